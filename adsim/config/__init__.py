"""Typed configuration: the scenario file schema (pydantic) and YAML loading with clear errors.

A scenario file describes one experiment: the world, the logging policy, the candidate policies,
the auction and bidders, and how to evaluate them. :func:`load_scenario` reads and validates it;
every problem becomes one :class:`~adsim.errors.ConfigError` whose message names the file, the
line and the path inside the file, e.g. ``quickstart.yaml:7: world.n_ads: must be >= 2, got 0``.
:func:`load_config` is the same machinery for any other pydantic config (training, serving).

One module per section: :mod:`~adsim.config.base` (strict model, loading, error messages),
:mod:`~adsim.config.world`, :mod:`~adsim.config.policies`, :mod:`~adsim.config.auction`,
:mod:`~adsim.config.scenario`.
"""

from adsim.config.auction import *  # noqa: F403
from adsim.config.base import *  # noqa: F403
from adsim.config.policies import *  # noqa: F403
from adsim.config.scenario import *  # noqa: F403
from adsim.config.world import *  # noqa: F403
