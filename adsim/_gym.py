"""Register adsim's Gymnasium envs as soon as Gymnasium is there, without importing it ourselves.

``import adsim`` must stay light (no gymnasium, torch, pandas), yet ``import adsim`` followed by
``gym.make("adsim/AdSelection-v0")`` should work in either import order. So:

* if :mod:`gymnasium` is already imported, the envs are registered at once;
* otherwise a one-shot post-import hook waits for ``gymnasium.envs.registration`` to finish
  loading, registers the envs, and removes itself.

The registration only records entry points (``adsim.env.envs:AdSelectionEnv``); the env module is
imported when an env is made. ``gym.make("adsim.env:adsim/AdSelection-v0")`` (Gymnasium's
``module:id`` form) and ``import adsim.env`` work as well.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

ENV_IDS = ("adsim/AdSelection-v0", "adsim/BudgetBidding-v0")
_TARGET = "gymnasium.envs.registration"


def register_envs() -> None:
    """Register ``adsim/AdSelection-v0`` and ``adsim/BudgetBidding-v0`` (idempotent)."""
    from gymnasium.envs.registration import register, registry

    if ENV_IDS[0] not in registry:
        register(id=ENV_IDS[0], entry_point="adsim.env.envs:AdSelectionEnv", max_episode_steps=1000)
    if ENV_IDS[1] not in registry:
        register(id=ENV_IDS[1], entry_point="adsim.env.envs:BudgetBiddingEnv")


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self._inner.exec_module(module)
        _Hook.remove()
        register_envs()


class _Hook(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of ``gymnasium.envs.registration`` once."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec

    @staticmethod
    def remove() -> None:
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Hook)]


def install() -> None:
    """Register now if Gymnasium is loaded, else once it is (called by ``import adsim``)."""
    if _TARGET in sys.modules:
        register_envs()
    elif not any(isinstance(f, _Hook) for f in sys.meta_path):
        sys.meta_path.insert(0, _Hook())
