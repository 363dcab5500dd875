"""A trained CTR/CVR network as the world's ground truth (the "world model").

``world.truth: {type: trained, run: runs/x, ad_fields: [...]}`` in a scenario builds a
:class:`~adsim.env.world.World` whose

* **users** are synthetic: ``n_users`` rows drawn from the feature distribution fitted on the run's
  prepared training rows (:class:`~adsim.env.feature_dist.FeatureDistribution`; ``users: rows``
  keeps whole rows and so every correlation, ``users: copula`` draws new rows from a Gaussian
  copula of the marginals). The columns that are not ``ad_fields`` are the user's features;
* **ads** are the ``n_ads`` most frequent combinations of the ``ad_fields`` values in those rows;
* **probabilities** are the network's *calibrated* outputs (the run's ``calibrator.json``), which
  therefore define the world: with the pipeline's multi-task contract
  (:mod:`adsim.models.multitask`)

  .. math::

      P(\\text{click} \\mid u, k) = c_{click}(\\hat p_{click}(u, k)), \\qquad
      P(\\text{conv} \\mid \\text{click}, u, k)
        = \\min\\!\\big(1, c_{conv}(\\hat p_{ctcvr}(u, k)) / P(\\text{click} \\mid u, k)\\big)

  clipped to ``[1e-6, 1 - 1e-6]`` so every logit is finite. Because the population is finite and
  these probabilities are deterministic, exact policy values (:mod:`adsim.env.oracle`) stay exact.

Inference is batched over (user, ad) pairs on CPU or CUDA. With ``cache`` (default when
``n_users × n_ads`` ≤ 20M) the whole ``(n_users, K, tasks)`` probability table is computed once when
the world is built, after which a batch of requests costs one gather — as fast as the parametric
world. Contexts passed to the truth must come from this world's population (``user_id`` indexes it).

:class:`NetworkTruth` has the truth interface of :mod:`adsim.env.truth` (``logits``, ``ctr``,
``scores``, ``logits_for``, ``perturbed``) plus ``cvr``/``ctcvr`` for conversions; its ``ctr`` can
also serve as the reward model q̂(x, a) of DM/DR estimators.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from adsim.env.catalog import Catalog
from adsim.env.feature_dist import FeatureDistribution
from adsim.env.features import Contexts, FeatureSpec
from adsim.errors import ConfigError, DataError

if TYPE_CHECKING:
    from adsim.config import WorldConfig
    from adsim.env.logs import BanditLog
    from adsim.env.world import World

__all__ = [
    "NetworkTruth",
    "FixedPopulation",
    "trained_world",
    "save_feature_distribution",
    "load_feature_distribution",
    "impressions_frame",
]

_P_MIN = 1e-6
_CACHE_LIMIT = 20_000_000


def _run_processed_dir(run_dir: Path) -> Path:
    import yaml

    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise DataError(f"{run_dir}: not a run folder (no config.yaml); train one with `adsim train CONFIG`")
    cfg = yaml.safe_load(cfg_path.read_text(encoding="utf-8"))
    return Path(cfg["data"]["processed_dir"])


def save_feature_distribution(
    run_dir: str | Path, processed_dir: str | Path | None = None, max_rows: int = 200_000,
    seed: int = 0,
) -> FeatureDistribution:
    """Fit the feature distribution of a run's prepared training rows and save it in the run folder.

    ``processed_dir`` defaults to the run config's ``data.processed_dir``. After this the run
    folder is self-contained as a world model (the prepared data may be deleted).
    """
    dist = _fit_distribution(Path(run_dir), processed_dir, max_rows, seed)
    dist.save(run_dir)
    return dist


def _fit_distribution(run_dir: Path, processed_dir: str | Path | None, max_rows: int,
                      seed: int) -> FeatureDistribution:
    from adsim.models.data import load_preprocessor

    pdir = Path(processed_dir) if processed_dir is not None else _run_processed_dir(run_dir)
    f = pdir / "train_data.parquet"
    if not f.exists():
        raise DataError(
            f"{f} not found: the world model needs the run's prepared training rows (or a"
            " world_features.json saved with save_feature_distribution)"
        )
    pre, _ = load_preprocessor(pdir)
    schema = pre.schema()
    seq_cols = [f"{s.name}:{i}" for s in schema.sequences for i in range(s.max_len)]
    return FeatureDistribution.fit(
        pd.read_parquet(f), list(schema.dense), [s.name for s in schema.sparse],
        [s.vocab_size for s in schema.sparse], seq_cols, max_rows, seed,
    )


def load_feature_distribution(run_dir: str | Path, processed_dir: str | Path | None = None) -> FeatureDistribution:
    """The run folder's saved distribution, else one fitted now on its prepared training rows."""
    d = Path(run_dir)
    if processed_dir is None and (d / "world_features.json").exists():
        return FeatureDistribution.load(d)
    return _fit_distribution(d, processed_dir, 200_000, 0)


class FixedPopulation:
    """A finite user pool given as :class:`Contexts` (the population interface of the world)."""

    def __init__(self, users: Contexts) -> None:
        self.spec = users.spec
        self.users = users
        self.n_users = len(users)
        self.weights = np.full(self.n_users, 1.0 / self.n_users)

    def sample(self, n: int, rng: np.random.Generator) -> Contexts:
        """``n`` requests: users drawn uniformly (with replacement) from the pool."""
        return self.users.take(rng.integers(0, self.n_users, size=n))


@dataclass
class _Layout:
    """Where user and ad columns go in the model's dense/sparse input."""

    user_dense: np.ndarray  # indices into schema.dense
    user_sparse: np.ndarray  # indices into schema.sparse
    ad_dense: np.ndarray
    ad_sparse: np.ndarray
    n_dense: int
    n_sparse: int


class NetworkTruth:
    """Calibrated network probabilities for every (user, ad); see the module docstring.

    Args:
        run: a loaded run folder (:func:`adsim.models.checkpoint.load_run`).
        layout: positions of user and ad columns in the model input.
        ad_dense, ad_sparse: ``(K, ·)`` encoded ad column values.
        user_seq: ``(n_users, S, L)`` behaviour sequences of the population (or None).
        click_task, conversion_task: output columns defining clicks and conversions (ctcvr).
        calibrated: apply the run's calibrators.
        device: torch device for inference.
        batch_size: (user, ad) pairs per forward pass.
    """

    def __init__(
        self, run: Any, layout: _Layout, ad_dense: np.ndarray, ad_sparse: np.ndarray,
        user_seq: np.ndarray | None, click_task: int, conversion_task: int | None,
        calibrated: bool = True, device: str = "cpu", batch_size: int = 65_536,
    ) -> None:
        self.run = run
        self.layout = layout
        self.ad_dense = np.asarray(ad_dense, np.float32)
        self.ad_sparse = np.asarray(ad_sparse, np.int64)
        self.user_seq = user_seq
        self.click_task = click_task
        self.conversion_task = conversion_task
        self.calibrated = calibrated
        self.device = device
        self.batch_size = int(batch_size)
        self._table: np.ndarray | None = None
        #: the run's column names of the users' dense / sparse features (context x0.. = dense[0]..)
        self.user_columns: dict[str, list[str]] = {"dense": [], "sparse": []}
        #: encoded ad-field values of each ad (row k = ad k), in the run's column names
        self.ad_table: pd.DataFrame = pd.DataFrame()
        tasks = [click_task] + ([conversion_task] if conversion_task is not None else [])
        self._tasks = np.asarray(tasks)

    @property
    def n_actions(self) -> int:
        return int(self.ad_sparse.shape[0])

    # ----------------------------------------------------------------------------- inference
    def _predict(self, users: Contexts, ads: np.ndarray) -> np.ndarray:
        """``(n, len(ads), n_tasks_used)`` calibrated, clipped probabilities (batched)."""
        import torch

        lay, n, k = self.layout, len(users), len(ads)
        out = np.empty((n, k, len(self._tasks)))
        step = max(1, self.batch_size // max(k, 1))
        model = self.run.model
        with torch.no_grad():
            for s in range(0, n, step):
                e = min(n, s + step)
                m = e - s
                dense = np.empty((m * k, lay.n_dense), np.float32)
                dense[:, lay.user_dense] = np.repeat(users.dense[s:e], k, axis=0)
                dense[:, lay.ad_dense] = np.tile(self.ad_dense[ads], (m, 1))
                sparse = np.empty((m * k, lay.n_sparse), np.int64)
                sparse[:, lay.user_sparse] = np.repeat(users.sparse[s:e], k, axis=0)
                sparse[:, lay.ad_sparse] = np.tile(self.ad_sparse[ads], (m, 1))
                batch = {"dense": torch.from_numpy(dense).to(self.device),
                         "sparse": torch.from_numpy(sparse).to(self.device)}
                if self.user_seq is not None:
                    seq = np.repeat(self.user_seq[users.user_id[s:e]], k, axis=0)
                    batch["seq"] = torch.from_numpy(seq).to(self.device)
                z = model(batch).float().reshape(m * k, -1)[:, torch.as_tensor(self._tasks)]
                out[s:e] = torch.sigmoid(z).double().cpu().numpy().reshape(m, k, -1)
        if self.calibrated:
            for j, t in enumerate(self._tasks):
                cal = self.run.calibrators.get(self.run.schema.tasks[t])
                if cal is not None:
                    out[..., j] = cal.predict(out[..., j].ravel()).reshape(n, k)
        return np.clip(out, _P_MIN, 1.0 - _P_MIN)

    def build_cache(self, users: Contexts) -> None:
        """Precompute the probability table of the whole population (``users.user_id`` = 0..n-1)."""
        if not np.array_equal(users.user_id, np.arange(len(users))):
            raise ValueError("the cache needs the full population with user_id = 0..n-1")
        self._table = self._predict(users, np.arange(self.n_actions))

    def probabilities(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K', n_tasks_used)``: P(click) and, if there is a conversion task, P(click ∧ conv)."""
        ads_idx = np.arange(self.n_actions) if ads is None else np.asarray(ads, np.int64)
        if self._table is not None:
            t = self._table[contexts.user_id]
            return t if ads is None else t[:, ads_idx]
        return self._predict(contexts, ads_idx)

    def predict(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` P(click) for *any* contexts with this world's feature spec (no cache): the
        reward model q̂(x, a) of DM/DR estimators (``reward_model=truth.predict(contexts)``)."""
        return self._predict(contexts, np.arange(self.n_actions))[..., 0]

    # ------------------------------------------------------------------------ truth interface
    def ctr(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` click probabilities."""
        return self.probabilities(contexts)[..., 0].copy()

    def logits(self, contexts: Contexts) -> np.ndarray:
        p = self.ctr(contexts)
        return np.log(p) - np.log1p(-p)

    def logits_for(self, contexts: Contexts, ads: np.ndarray) -> np.ndarray:
        p = self.probabilities(contexts, ads)[..., 0]
        return np.log(p) - np.log1p(-p)

    def scores(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` log click probabilities."""
        return np.log(self.ctr(contexts))

    def ctcvr(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K')`` P(click ∧ conversion)."""
        if self.conversion_task is None:
            raise ValueError("this world model has no conversion task")
        p = self.probabilities(contexts, ads)
        return np.minimum(p[..., 1], p[..., 0])

    def cvr(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K')`` P(conversion | click) = P(click ∧ conv) / P(click), at most 1."""
        p = self.probabilities(contexts, ads)
        if self.conversion_task is None:
            raise ValueError("this world model has no conversion task")
        return np.minimum(p[..., 1] / p[..., 0], 1.0)

    def conversion_model(self, delay_mean: float = 0.0) -> Any:
        """An :class:`adsim.env.truth.ConversionModel` whose P(conversion | click) is :meth:`cvr`
        (for the auction world: ``auction_world.conversion = truth.conversion_model()``)."""
        from adsim.env.truth import ConversionModel

        if self.conversion_task is None:
            raise ValueError("this world model has no conversion task")
        return ConversionModel(_CvrView(self), delay_mean)  # type: ignore[arg-type]

    def perturbed(self, noise: float, rng: np.random.Generator) -> _PerturbedTruth:
        """A 'production model' that is never quite right: the logit plus
        ``noise · (ε_k + x_u·E_k/√d + Σ_f T_f[c_uf, k])`` with standard normal ε, E, T."""
        k, lay = self.n_actions, self.layout
        d = len(lay.user_dense)
        vocab = [self.run.schema.sparse[i].vocab_size for i in lay.user_sparse]
        return _PerturbedTruth(
            self, noise * rng.standard_normal(k),
            noise * rng.standard_normal((d, k)) / np.sqrt(max(d, 1)),
            [noise * rng.standard_normal((v, k)) for v in vocab],
        )


@dataclass
class _PerturbedTruth:
    """:meth:`NetworkTruth.perturbed`: the base logits plus fixed random offsets."""

    base: NetworkTruth
    bias: np.ndarray  # (K,)
    emb: np.ndarray  # (n_user_dense, K)
    tables: list[np.ndarray]  # one (vocab_f, K) per user sparse field

    @property
    def n_actions(self) -> int:
        return self.base.n_actions

    def logits(self, contexts: Contexts) -> np.ndarray:
        out = self.base.logits(contexts) + self.bias + contexts.dense @ self.emb
        for j, t in enumerate(self.tables):
            out += t[contexts.sparse[:, j]]
        return out

    def ctr(self, contexts: Contexts) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.logits(contexts)))

    def scores(self, contexts: Contexts) -> np.ndarray:
        return -np.logaddexp(0.0, -self.logits(contexts))


@dataclass
class _CvrView:
    """:meth:`NetworkTruth.cvr` seen through the truth interface (logits of P(conv | click))."""

    base: NetworkTruth

    @property
    def n_actions(self) -> int:
        return self.base.n_actions

    def logits_for(self, contexts: Contexts, ads: np.ndarray) -> np.ndarray:
        p = np.clip(self.base.cvr(contexts, ads), _P_MIN, 1.0 - _P_MIN)
        return np.log(p) - np.log1p(-p)

    def logits(self, contexts: Contexts) -> np.ndarray:
        return self.logits_for(contexts, np.arange(self.n_actions))

    def ctr(self, contexts: Contexts) -> np.ndarray:
        return np.clip(self.base.cvr(contexts), _P_MIN, 1.0 - _P_MIN)


# ------------------------------------------------------------------------------- the world
def _resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("world.truth.device is 'cuda' but no CUDA device is available; use 'auto' or 'cpu'")
    return name


def trained_world(cfg: WorldConfig, rng: np.random.Generator) -> World:
    """Build the world of ``cfg`` (``cfg.truth.type == "trained"``); see the module docstring."""
    from adsim.env.world import World
    from adsim.models.checkpoint import load_run

    t = cfg.truth
    device = _resolve_device(t.device)
    run_dir = Path(t.run)
    if not run_dir.is_dir():
        raise ConfigError(
            f"world.truth.run: run folder {str(run_dir)!r} not found; train one with"
            " `adsim train CONFIG --out FOLDER` (paths are relative to the working directory)"
        )
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
    conv_default = 1 if len(tasks) > 1 and t.click_task is None else None
    conv = _task_index(t.conversion_task, tasks, "conversion_task", conv_default)

    ad_d = np.array([dense.index(c) for c in t.ad_fields if c in dense], np.int64)
    ad_s = np.array([sparse.index(c) for c in t.ad_fields if c in sparse], np.int64)
    user_d = np.array([i for i, c in enumerate(dense) if c not in t.ad_fields], np.int64)
    user_s = np.array([i for i, c in enumerate(sparse) if c not in t.ad_fields], np.int64)
    layout = _Layout(user_d, user_s, ad_d, ad_s, len(dense), len(sparse))

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
    truth = NetworkTruth(run, layout, ad_dense, ad_sparse, user_seq, click, conv,
                         t.calibrated, device, t.batch_size)
    use_cache = t.cache == "always" or (t.cache == "auto" and n * cfg.n_ads <= _CACHE_LIMIT)
    if use_cache:
        truth.build_cache(users)
    truth.user_columns = {"dense": [dense[i] for i in user_d], "sparse": list(spec.sparse_names)}
    truth.ad_table = combos[list(t.ad_fields)]
    return World(population=FixedPopulation(users), catalog=catalog, truth=truth, reward=cfg.reward)


def _task_index(name: str | None, tasks: list[str], key: str, default: int | None) -> int | None:
    if name is None:
        return default
    if name not in tasks:
        raise ConfigError(f"world.truth.{key}: {name!r} is not a task of the run; its tasks are {', '.join(tasks)}")
    return tasks.index(name)


def impressions_frame(world: World, log: BanditLog) -> pd.DataFrame:
    """A logged world-model log as a CTR training table in the run's own column names.

    Columns: the user's dense and sparse columns, the shown ad's ``ad_fields`` columns, ``click``
    (the logged reward > 0) and ``p_click`` (the true click probability of the shown ad).
    """
    truth = world.truth
    if not isinstance(truth, NetworkTruth) or log.context is None or log.expected_reward is None:
        raise ValueError("impressions_frame needs a trained world and a log with contexts and q")
    ctx = log.context
    cols = truth.user_columns
    out: dict[str, np.ndarray] = {"user_id": ctx["user_id"].to_numpy()}
    for i, c in enumerate(cols["dense"]):
        out[c] = ctx[f"x{i}"].to_numpy()
    for c in cols["sparse"]:
        out[c] = ctx[c].to_numpy()
    ads = truth.ad_table.iloc[log.action].reset_index(drop=True)
    for c in ads.columns:
        out[c] = ads[c].to_numpy()
    out["click"] = (log.reward > 0).astype(np.int64)
    q = log.expected_reward.reshape(log.n_rounds, -1)
    p = q[np.arange(log.n_rounds), log.action]
    if world.reward == "value":
        p = p / world.catalog.values[log.action]
    out["p_click"] = p
    return pd.DataFrame(out)
