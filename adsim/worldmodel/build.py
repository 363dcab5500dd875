"""Building a world whose truth is a trained network (``world.truth: {type: trained, …}``).

:func:`trained_world` turns a run folder into a :class:`~adsim.env.world.World` whose

* **users** are synthetic: ``n_users`` rows drawn from the feature distribution fitted on the run's
  prepared training rows (:mod:`adsim.worldmodel.features`; ``users: rows`` keeps whole rows and
  so every correlation, ``users: copula`` draws new rows from a Gaussian copula of the marginals).
  The columns that are not ``ad_fields`` are the user's features;
* **ads** are the ``n_ads`` most frequent combinations of the ``ad_fields`` values in those rows;
* **probabilities** are the network's calibrated outputs (:class:`~adsim.worldmodel.network.NetworkTruth`):
  clicks from pCTR, conversions from pCVR = pCTCVR / pCTR (a multi-task run with a conversion
  task — ESMM, MMoE, PLE, shared-bottom, multi-task Transformer) or from a separate CVR run
  (``cvr_run``).

:func:`resolve_run` checks ``world.truth.run``; :func:`train_world_model` trains a run config into
a folder (the builder the experiments layer's build cache runs when a scenario names its world
model by its training config, ``world.truth.train``:
:func:`adsim.experiments.world_models.scenario_world`).

:func:`build_world` builds any world (parametric or trained); importing :mod:`adsim.worldmodel`
registers it with :class:`adsim.env.world.World` so ``World.from_config`` (and the Gymnasium
envs) accept trained truths given by ``world.truth.run``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from adsim.env.catalog import Catalog
from adsim.env.features import Contexts, FeatureSpec
from adsim.env.world import World
from adsim.errors import ConfigError
from adsim.worldmodel.features import load_feature_distribution, save_feature_distribution
from adsim.worldmodel.network import FixedPopulation, Layout, NetworkTruth

if TYPE_CHECKING:
    from adsim.config import TrainedTruthConfig, WorldConfig
    from adsim.models.config import RunConfig

__all__ = [
    "build_world", "trained_world", "resolve_run", "register_train_resolver", "train_world_model",
]

_CACHE_LIMIT = 20_000_000


# ------------------------------------------------------------------------------ the run folder
def train_world_model(config: RunConfig, folder: Path, *, progress: bool = True) -> Path:
    """Train the world model of run config ``config`` into ``folder / "run"`` and return that.

    The data are prepared inside ``folder`` (``processed/``), the run is trained and calibrated,
    its feature distribution is saved into the run folder (so it is self-contained) and the
    prepared data and training state are deleted. The run's ``config.yaml`` keeps the config's own
    ``processed_dir``: no path into ``folder`` is stored, so ``folder`` may be renamed (the build
    cache, :func:`adsim.experiments.world_models.cached_world_model`, builds in a temporary folder).
    """
    import yaml

    from adsim._io import write_text
    from adsim.models.run import train_run, write_run_manifest

    processed = folder / "processed"
    local = config.model_copy(update={
        "data": config.data.model_copy(update={"processed_dir": str(processed)}),
        "train": config.train.model_copy(update={"tensorboard": False}),
    })
    run_dir = folder / "run"
    train_run(local, run_dir, prepare=True, progress=progress)
    save_feature_distribution(run_dir, processed)
    shutil.rmtree(processed)
    for name in ("resume.pt", "best.pt"):  # training state, not part of the world model
        (run_dir / name).unlink(missing_ok=True)
    write_text(run_dir / "config.yaml",
               yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    write_run_manifest(run_dir)  # the finished world model, as it now is: manifest last
    return run_dir


#: how ``world.truth.train`` (a training config path) becomes a run folder: registered by the
#: experiments layer (:mod:`adsim.experiments.world_models`: its build cache), which this bridge
#: does not import
_TRAIN_RESOLVER: list[Callable[[str], Path]] = []


def register_train_resolver(resolver: Callable[[str], Path]) -> None:
    """Let :func:`resolve_run` turn ``world.truth.train`` into a run folder with ``resolver``."""
    _TRAIN_RESOLVER[:] = [resolver]


def resolve_run(truth: TrainedTruthConfig) -> Path:
    """The run folder of ``world.truth.run`` (ConfigError if it is missing), or of
    ``world.truth.train`` through the registered resolver (the build cache, registered when
    :mod:`adsim.experiments.world_models` is imported — ``adsim run`` does)."""
    if truth.run is None and truth.train is not None and _TRAIN_RESOLVER:
        return _TRAIN_RESOLVER[0](truth.train)
    if truth.run is None:
        raise ConfigError(
            f"world.truth.train ({truth.train}): this world model is trained by `adsim run`"
            " (adsim.experiments.world_models.scenario_world); here give world.truth.run, a run"
            " folder from `adsim train CONFIG --out FOLDER`"
        )
    run_dir = Path(truth.run)
    if not run_dir.is_dir():
        raise ConfigError(
            f"world.truth.run: run folder {str(run_dir)!r} not found; train one with"
            " `adsim train CONFIG --out FOLDER`, or name the training config as"
            " world.truth.train so `adsim run` trains it (paths are relative to the working"
            " directory)"
        )
    return run_dir


# ----------------------------------------------------------------------------------- the world
def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("world.truth.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return name


def _task_index(name: str | None, tasks: list[str], key: str, default: int | None) -> int | None:
    if name is None:
        return default
    if name not in tasks:
        raise ConfigError(f"world.truth.{key}: {name!r} is not a task of the run; its tasks are {', '.join(tasks)}")
    return tasks.index(name)


def build_world(cfg: WorldConfig, rng: np.random.Generator, run_dir: Path | None = None) -> World:
    """Any world: parametric (:meth:`World.from_config`) or trained (:func:`trained_world`, from
    ``run_dir``, default :func:`resolve_run`)."""
    if cfg.truth.type != "trained":
        return World.from_config(cfg, rng)
    return trained_world(cfg, rng, run_dir)


def trained_world(cfg: WorldConfig, rng: np.random.Generator, run_dir: Path | None = None) -> World:
    """Build the world of ``cfg`` (``cfg.truth.type == "trained"``) from ``run_dir`` (default
    :func:`resolve_run`); see the module docstring."""
    from adsim.models.checkpoint import load_run

    t = cfg.truth
    if t.type != "trained":
        raise ValueError("trained_world needs world.truth.type 'trained'")
    if run_dir is None:
        run_dir = resolve_run(t)
    device = _resolve_device(t.device)
    run = load_run(run_dir, device)
    schema = run.schema
    dist = load_feature_distribution(run_dir, t.data)
    dense, sparse = list(schema.dense), [f.name for f in schema.sparse]
    unknown = [c for c in t.ad_fields if c not in dense and c not in sparse]
    if unknown:
        raise ConfigError(
            f"world.truth.ad_fields: {unknown[0]!r} is not a feature of the run; its features are"
            f" {', '.join(dense + sparse)}"
        )
    tasks = list(schema.tasks)
    click = _task_index(t.click_task, tasks, "click_task", 0)
    assert click is not None
    conv_default = 1 if len(tasks) > 1 and t.click_task is None and t.cvr_run is None else None
    conv = _task_index(t.conversion_task, tasks, "conversion_task", conv_default)

    ad_d = np.array([dense.index(c) for c in t.ad_fields if c in dense], np.int64)
    ad_s = np.array([sparse.index(c) for c in t.ad_fields if c in sparse], np.int64)
    user_d = np.array([i for i, c in enumerate(dense) if c not in t.ad_fields], np.int64)
    user_s = np.array([i for i, c in enumerate(sparse) if c not in t.ad_fields], np.int64)
    layout = Layout(user_d, user_s, ad_d, ad_s, len(dense), len(sparse))

    # ads: the most frequent combinations of ad-field values (ties broken by value, stable)
    combos = dist.rows[list(t.ad_fields)].value_counts(sort=False).reset_index(name="n")
    combos = combos.sort_values(["n", *t.ad_fields], ascending=[False] + [True] * len(t.ad_fields),
                                kind="stable")
    if len(combos) < cfg.n_ads:
        raise ConfigError(
            f"world.n_ads is {cfg.n_ads} but the run's training rows have only {len(combos)}"
            f" distinct ads (combinations of {', '.join(t.ad_fields)}); lower world.n_ads"
        )
    combos = combos.iloc[: cfg.n_ads].reset_index(drop=True)
    ad_dense = combos[[dense[i] for i in ad_d]].to_numpy(np.float32).reshape(cfg.n_ads, len(ad_d))
    ad_sparse = combos[[sparse[i] for i in ad_s]].to_numpy(np.int64).reshape(cfg.n_ads, len(ad_s))
    values = np.exp(cfg.value_sigma * rng.standard_normal(cfg.n_ads))
    catalog = Catalog(features=np.hstack([ad_dense, ad_sparse]).astype(np.float64), values=values)

    rows = dist.sample(cfg.n_users, rng, t.users)
    spec = FeatureSpec(
        n_dense=len(user_d), sparse_names=tuple(sparse[i] for i in user_s),
        vocab_sizes=tuple(schema.sparse[i].vocab_size for i in user_s),
    )
    n = cfg.n_users
    users = Contexts(
        spec, np.arange(n, dtype=np.int64),
        rows[[dense[i] for i in user_d]].to_numpy(np.float64).reshape(n, len(user_d)),
        rows[[sparse[i] for i in user_s]].to_numpy(np.int64).reshape(n, len(user_s)),
    )
    user_seq = None
    if schema.sequences:
        user_seq = np.stack([
            rows[[f"{s.name}:{i}" for i in range(s.max_len)]].to_numpy(np.int64)
            for s in schema.sequences
        ], axis=1)
    user_columns = {"dense": [dense[i] for i in user_d], "sparse": list(spec.sparse_names)}
    ad_table = combos[list(t.ad_fields)]
    cvr_function = None
    if t.cvr_run is not None:
        cvr_function = _cvr_run_function(t, run, device, user_columns, ad_table)
    truth = NetworkTruth(run, layout, ad_dense, ad_sparse, user_seq, click, conv,
                         t.calibrated, device, t.batch_size, cvr_function)
    truth.user_columns = user_columns
    truth.ad_table = ad_table
    use_cache = t.cache == "always" or (t.cache == "auto" and n * cfg.n_ads <= _CACHE_LIMIT)
    if use_cache:
        truth.build_cache(users)
    return World(population=FixedPopulation(users), catalog=catalog, truth=truth, reward=cfg.reward)


# --------------------------------------------------------------------------- a separate CVR run
def _decode(pre: Any, column: str, values: np.ndarray) -> np.ndarray:
    """Raw values of an encoded column of preprocessor ``pre`` (inverse of its transform)."""
    if column in pre.dense:
        j = pre.dense.index(column)
        y = np.asarray(values, np.float64) * pre.scale_[j] + pre.mean_[j]
        return np.sign(y) * np.expm1(np.abs(y)) if column in pre.log1p else y
    vocab = np.asarray([*pre.vocab_[column], "\x00unknown"], dtype=object)
    ids = np.asarray(values, np.int64) - 2
    return vocab[np.where(ids >= 0, ids, len(vocab) - 1)]


def _cvr_run_function(t: TrainedTruthConfig, run: Any, device: str,
                      user_columns: dict[str, list[str]], ad_table: pd.DataFrame) -> Any:
    """P(conversion | click) of ``world.truth.cvr_run`` for encoded (user, ad) pairs: the rows are
    decoded to raw values with the click run's preprocessor and scored by the CVR run's own
    :meth:`~adsim.models.checkpoint.Run.predict_frame` (its preprocessor, model, calibrator)."""
    from adsim.models.checkpoint import load_run

    assert t.cvr_run is not None
    cvr_dir = Path(t.cvr_run)
    if not cvr_dir.is_dir():
        raise ConfigError(
            f"world.truth.cvr_run: run folder {str(cvr_dir)!r} not found; train a CVR model on"
            " the clicked rows (label: conversion) with `adsim train CONFIG --out FOLDER`"
        )
    cvr = load_run(cvr_dir, device)
    need = set(cvr.preprocessor.features)
    have = {*user_columns["dense"], *user_columns["sparse"], *ad_table.columns}
    missing = sorted(need - have)
    if missing:
        raise ConfigError(
            f"world.truth.cvr_run: its feature {missing[0]!r} is not a feature of world.truth.run;"
            " train the CVR run on the same feature columns"
        )
    pre = run.preprocessor
    ad_raw = {c: _decode(pre, c, ad_table[c].to_numpy()) for c in ad_table.columns}

    def cvr_function(users: Contexts, ads: np.ndarray) -> np.ndarray:
        n, k = len(users), len(ads)
        raw: dict[str, np.ndarray] = {}
        for i, c in enumerate(user_columns["dense"]):
            raw[c] = np.repeat(_decode(pre, c, users.dense[:, i]), k)
        for i, c in enumerate(user_columns["sparse"]):
            raw[c] = np.repeat(_decode(pre, c, users.sparse[:, i]), k)
        for c, v in ad_raw.items():
            raw[c] = np.tile(v[ads], n)
        frame = pd.DataFrame({c: raw[c] for c in raw if c in need})
        p = cvr.predict_frame(frame, calibrated=t.calibrated, batch_size=t.batch_size)
        return p[:, 0].reshape(n, k)

    return cvr_function
