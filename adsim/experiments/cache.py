"""The build cache: what a scenario needs (a trained world model, an RL agent) built once, reused.

``adsim run`` builds a missing artefact from the config the scenario names and keeps it under

    $ADSIM_CACHE_DIR (default ``~/.cache/adsim``) / <kind> / <key>/

where ``key`` is the SHA-256 of the kind, the config's canonical content (parsed YAML dumped as
sorted JSON, so comments and key order do not matter), the seed, the adsim version and any
``extra`` inputs. The folder is built aside and renamed into place with a ``manifest.json`` written
last (:func:`adsim._io.atomic_dir`), so a killed build leaves nothing that looks finished, and a
folder whose files no longer match its manifest is rebuilt. ``no_train=True`` (``--no-train``)
turns a miss into a clear :class:`~adsim.errors.ConfigError` instead of a build.

The builder writes into the folder it is given (``<tmp>/``) and must not store absolute paths
to it: the folder is renamed when the build succeeds.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adsim import __version__
from adsim._io import atomic_dir, read_manifest, verify_manifest
from adsim.errors import AdsimError, ConfigError

__all__ = ["cache_root", "cache_key", "cached_build", "lookup"]

#: bumped when what a cached build holds changes shape (2: run folders carry manifests), so an
#: entry built by an older adsim is rebuilt rather than refused by the stricter readers
CACHE_FORMAT = 2


def cache_root() -> Path:
    """``$ADSIM_CACHE_DIR``, else ``~/.cache/adsim``."""
    env = os.environ.get("ADSIM_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "adsim"


def _canonical(config: str | os.PathLike[str] | dict[str, Any]) -> str:
    if isinstance(config, dict):
        return json.dumps(config, sort_keys=True, default=str)
    from adsim.config.base import load_yaml_mapping

    return json.dumps(load_yaml_mapping(Path(config)), sort_keys=True, default=str)


def cache_key(kind: str, config: str | os.PathLike[str] | dict[str, Any], seed: int,
              extra: dict[str, Any] | None = None) -> str:
    """The cache key of building ``kind`` from ``config`` (a YAML path or a mapping) with ``seed``."""
    body = json.dumps(
        {"kind": kind, "config": _canonical(config), "seed": int(seed), "adsim": __version__,
         "format": CACHE_FORMAT,
         "extra": extra or {}},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()[:20]


def lookup(kind: str, key: str) -> Path | None:
    """The cached folder for ``(kind, key)`` if it is complete and intact, else ``None``."""
    target = cache_root() / kind / key
    if not target.is_dir():
        return None
    try:
        verify_manifest(target, kind=f"cache:{kind}")
    except AdsimError:
        return None
    return target


def cached_build(
    kind: str, config: str | os.PathLike[str] | dict[str, Any], seed: int,
    build: Callable[[Path], None], *, what: str, no_train: bool = False,
    extra: dict[str, Any] | None = None, hint: str = "",
) -> Path:
    """Return the cached folder for ``(kind, config, seed)``, building it with ``build(folder)`` on a miss.

    ``what`` names the artefact in messages (e.g. ``"world.truth.run"``); ``hint`` says how to
    build it by hand for the ``--no-train`` error. Concurrent builders of the same key are
    serialised with a file lock.
    """
    key = cache_key(kind, config, seed, extra)
    hit = lookup(kind, key)
    if hit is not None:
        return hit
    if no_train:
        raise ConfigError(
            f"{what}: not built yet (cache {cache_root() / kind / key} is empty) and --no-train"
            f" was given; run without --no-train to build it{(' or ' + hint) if hint else ''}"
        )
    target = cache_root() / kind / key
    target.parent.mkdir(parents=True, exist_ok=True)
    import fcntl

    with open(target.parent / f".{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = lookup(kind, key)
        if hit is not None:
            return hit
        meta = {"config": str(config) if not isinstance(config, dict) else "<mapping>",
                "seed": int(seed), "key": key}
        with atomic_dir(target, f"cache:{kind}", extra={"cache": meta}) as tmp:
            build(tmp)
    read_manifest(target)
    return target
