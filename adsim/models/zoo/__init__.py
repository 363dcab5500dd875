"""Model zoo: one file per architecture, looked up by name.

``build_model(name, schema, **config)`` constructs a registered model. Each architecture
registers itself with ``@register("name", ConfigDataclass)``; configs are small dataclasses.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from adsim.models.schema import ModelSchema

__all__ = ["register", "build_model", "available_models", "MODULES", "MULTITASK"]

#: name -> module that defines it (imported on first use, keeps `import adsim` light). The one
#: list of model names: ``@register`` refuses a name that is not here (or lives elsewhere), the
#: training config (``model.name``) accepts exactly these, and tests/test_registries.py imports
#: every module to check each name is registered.
MODULES: dict[str, str] = {
    # single-task feature-interaction models (issue 7); all also accept several tasks
    "lr": "adsim.models.zoo.lr",
    "fm": "adsim.models.zoo.fm",
    "deepfm": "adsim.models.zoo.deepfm",
    "xdeepfm": "adsim.models.zoo.xdeepfm",
    "dcnv2": "adsim.models.zoo.dcnv2",
    "autoint": "adsim.models.zoo.autoint",
    "fibinet": "adsim.models.zoo.fibinet",
    "dlrm": "adsim.models.zoo.dlrm",
    "fgn": "adsim.models.zoo.fgn",
    # multi-task architectures (issue 8)
    "shared_bottom": "adsim.models.zoo.shared_bottom",
    "esmm": "adsim.models.zoo.esmm",
    "mmoe": "adsim.models.zoo.mmoe",
    "ple": "adsim.models.zoo.ple",
    "multitask_transformer": "adsim.models.zoo.multitask_transformer",
}

#: the architectures built for several tasks (tested in tests/models/multitask)
MULTITASK: frozenset[str] = frozenset(
    {"shared_bottom", "esmm", "mmoe", "ple", "multitask_transformer"}
)

_REGISTRY: dict[str, tuple[type, type]] = {}


def register(name: str, config_cls: type) -> Callable[[type], type]:
    """Class decorator: register a model class under ``name`` with its config dataclass."""

    def deco(cls: type) -> type:
        if MODULES.get(name) != cls.__module__:  # MODULES is the one list of names
            raise RuntimeError(
                f"model {name!r} registered in {cls.__module__} but MODULES says"
                f" {MODULES.get(name)!r}: add it to adsim.models.zoo.MODULES"
            )
        _REGISTRY[name] = (cls, config_cls)
        cls.zoo_name = name  # type: ignore[attr-defined]
        return cls

    return deco


def available_models(kind: str = "all") -> list[str]:
    """Registered names: ``kind`` = ``"all"``, ``"single"`` (interaction models) or ``"multitask"``."""
    if kind == "single":
        return sorted(set(MODULES) - MULTITASK)
    if kind == "multitask":
        return sorted(MULTITASK)
    if kind != "all":
        raise ValueError(f"kind must be 'all', 'single' or 'multitask', got {kind!r}")
    return sorted(MODULES)


def build_model(name: str, schema: ModelSchema, **config: Any) -> Any:
    """Instantiate model ``name`` for ``schema``; unknown names/keys raise ValueError."""
    if name not in MODULES:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available_models())}")
    importlib.import_module(MODULES[name])
    cls, cfg_cls = _REGISTRY[name]
    known = {f.name for f in fields(cfg_cls)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise ValueError(
            f"model {name!r} has no option {unknown[0]!r}; options: {', '.join(sorted(known))}"
        )
    return cls(schema, cfg_cls(**config))
