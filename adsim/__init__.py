"""adsim — a simulation-first ad-auction environment and policy gym.

Importing :mod:`adsim` is cheap: it does not import torch, matplotlib or gymnasium. The
sub-packages are imported on demand (``adsim.env``, ``adsim.policies``, ``adsim.estimators``,
``adsim.models``, ``adsim.experiments``).
"""

__version__ = "0.1.0"

from adsim.errors import AdsimError, ConfigError, DataError  # noqa: E402

__all__ = ["__version__", "AdsimError", "ConfigError", "DataError"]
