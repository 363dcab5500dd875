"""adsim — a simulation-first ad-auction environment and policy gym.

Importing :mod:`adsim` is cheap: it does not import torch, matplotlib or gymnasium. The
sub-packages are imported on demand (``adsim.env``, ``adsim.policies``, ``adsim.estimators``,
``adsim.models``, ``adsim.experiments``).
"""

__version__ = "0.1.0"

from adsim import _gym  # noqa: E402
from adsim.errors import AdsimError, ConfigError, DataError  # noqa: E402

_gym.install()  # `gym.make("adsim/AdSelection-v0")` works after `import adsim` (see adsim._gym)

# The public Python API, imported on first use so that `import adsim` stays light.
_LAZY = {
    "load_scenario": "adsim.config",
    "run_scenario": "adsim.experiments.runner",
    "evaluate": "adsim.estimators.api",
    "run_ope": "adsim.estimators.api",
    "BanditLog": "adsim.env.logs",
    "read_log": "adsim.env.logs",
    "load_run_config": "adsim.models.config",
    "train_run": "adsim.models.run",
    "load_run": "adsim.models.checkpoint",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'adsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["__version__", "AdsimError", "ConfigError", "DataError", *_LAZY]
