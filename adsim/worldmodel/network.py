"""A trained CTR/CVR network as a world's ground truth: :class:`NetworkTruth`.

The truth of a world built from a run folder (:func:`adsim.worldmodel.build.trained_world`) is the
network's *calibrated* output (the run's ``calibrator.json``). With the pipeline's multi-task
contract (:mod:`adsim.models.multitask`: column ``t`` models label ``t`` over all impressions, so a
``conversion`` column is pCTCVR = P(click ∧ conversion)):

.. math::

    P(\\text{click} \\mid u, k) &= \\operatorname{clip}\\big(c_{click}(\\hat p_{click}(u, k))\\big) \\\\
    P(\\text{conv} \\mid \\text{click}, u, k) &=
        \\operatorname{clip}\\big(c_{conv}(\\hat p_{ctcvr}(u, k)) / P(\\text{click} \\mid u, k)\\big)

with ``clip`` to ``[1e-6, 1 − 1e-6]`` so every logit is finite (ESMM: Ma et al. 2018, SIGIR,
"Entire Space Multi-Task Model" — pCVR = pCTCVR / pCTR). With a separate CVR run
(``world.truth.cvr_run``) the second line is that run's calibrated first output, a model of
P(conversion | click) trained on clicked rows. Because the population is finite and these
probabilities are deterministic, the oracles of :mod:`adsim.env.oracle` stay exact: expected clicks
of showing ad ``k`` to user ``u`` are ``ctr[u, k]``, expected conversions ``ctr[u, k] · cvr[u, k]``.

Inference is batched over (user, ad) pairs on CPU or CUDA. With a cache (the default when
``n_users × n_ads`` ≤ 20M) the whole ``(n_users, K, 2)`` table is computed once when the world is
built, after which a batch of requests costs one gather. Contexts passed to the truth must come
from the world's population (``user_id`` indexes it).

:class:`NetworkTruth` has the truth interface of :mod:`adsim.env.truth` (``logits``, ``ctr``,
``scores``, ``logits_for``, ``perturbed``) plus ``cvr``/``ctcvr``/``conversion_model`` for
conversions; ``predict`` can serve as the reward model q̂(x, a) of DM/DR estimators.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adsim.env.features import Contexts
from adsim.env.truth import ConversionModel

__all__ = ["NetworkTruth", "FixedPopulation", "P_MIN"]

P_MIN = 1e-6


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
class Layout:
    """Where user and ad columns go in the model's dense/sparse input."""

    user_dense: np.ndarray  # indices into schema.dense
    user_sparse: np.ndarray  # indices into schema.sparse
    ad_dense: np.ndarray
    ad_sparse: np.ndarray
    n_dense: int
    n_sparse: int


def network_probabilities(
    run: Any, layout: Layout, tasks: np.ndarray, users: Contexts, user_seq: np.ndarray | None,
    ad_dense: np.ndarray, ad_sparse: np.ndarray, ads: np.ndarray, calibrated: bool,
    device: str, batch_size: int,
) -> np.ndarray:
    """``(n, len(ads), len(tasks))`` calibrated probabilities of a run, clipped to [1e-6, 1 − 1e-6].

    Rows are (user, ad) pairs assembled in the run's encoded input space (user columns from
    ``users``, ad columns from ``ad_dense``/``ad_sparse``); one forward pass per batch.
    """
    import torch

    lay, n, k = layout, len(users), len(ads)
    out = np.empty((n, k, len(tasks)))
    step = max(1, batch_size // max(k, 1))
    with torch.no_grad():
        for s in range(0, n, step):
            e = min(n, s + step)
            m = e - s
            dense = np.empty((m * k, lay.n_dense), np.float32)
            dense[:, lay.user_dense] = np.repeat(users.dense[s:e], k, axis=0)
            dense[:, lay.ad_dense] = np.tile(ad_dense[ads], (m, 1))
            sparse = np.empty((m * k, lay.n_sparse), np.int64)
            sparse[:, lay.user_sparse] = np.repeat(users.sparse[s:e], k, axis=0)
            sparse[:, lay.ad_sparse] = np.tile(ad_sparse[ads], (m, 1))
            batch = {"dense": torch.from_numpy(dense).to(device),
                     "sparse": torch.from_numpy(sparse).to(device)}
            if user_seq is not None:
                seq = np.repeat(user_seq[users.user_id[s:e]], k, axis=0)
                batch["seq"] = torch.from_numpy(seq).to(device)
            z = run.model(batch).float().reshape(m * k, -1)[:, torch.as_tensor(tasks)]
            out[s:e] = torch.sigmoid(z).double().cpu().numpy().reshape(m, k, -1)
    if calibrated:
        for j, t in enumerate(tasks):
            cal = run.calibrators.get(run.schema.tasks[t])
            if cal is not None:
                out[..., j] = cal.predict(out[..., j].ravel()).reshape(n, k)
    return np.clip(out, P_MIN, 1.0 - P_MIN)


#: ``(contexts, ads) -> (n, len(ads))`` calibrated P(conversion | click) of a separate CVR run
CvrFunction = Callable[[Contexts, np.ndarray], np.ndarray]


class NetworkTruth:
    """Calibrated network probabilities for every (user, ad); see the module docstring.

    Args:
        run: a loaded run folder (:func:`adsim.models.checkpoint.load_run`).
        layout: positions of user and ad columns in the model input.
        ad_dense, ad_sparse: ``(K, ·)`` encoded ad column values.
        user_seq: ``(n_users, S, L)`` behaviour sequences of the population (or None).
        click_task: output column of P(click).
        conversion_task: output column of P(click ∧ conversion) (or None).
        calibrated: apply the run's calibrators.
        device: torch device for inference.
        batch_size: (user, ad) pairs per forward pass.
        cvr_function: P(conversion | click) from a separate CVR run (instead of ``conversion_task``).
    """

    def __init__(
        self, run: Any, layout: Layout, ad_dense: np.ndarray, ad_sparse: np.ndarray,
        user_seq: np.ndarray | None, click_task: int, conversion_task: int | None,
        calibrated: bool = True, device: str = "cpu", batch_size: int = 65_536,
        cvr_function: CvrFunction | None = None,
    ) -> None:
        if conversion_task is not None and cvr_function is not None:
            raise ValueError("give conversion_task or cvr_function, not both")
        self.run = run
        self.layout = layout
        self.ad_dense = np.asarray(ad_dense, np.float32)
        self.ad_sparse = np.asarray(ad_sparse, np.int64)
        self.user_seq = user_seq
        self.click_task = click_task
        self.conversion_task = conversion_task
        self.cvr_function = cvr_function
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

    @property
    def has_conversions(self) -> bool:
        """Whether the network defines conversions (a conversion task or a CVR run)."""
        return self.conversion_task is not None or self.cvr_function is not None

    # ----------------------------------------------------------------------------- inference
    def _predict(self, users: Contexts, ads: np.ndarray) -> np.ndarray:
        """``(n, len(ads), 1 or 2)``: P(click) and, with conversions, P(conversion | click)."""
        p = network_probabilities(
            self.run, self.layout, self._tasks, users, self.user_seq, self.ad_dense,
            self.ad_sparse, ads, self.calibrated, self.device, self.batch_size,
        )
        if self.conversion_task is not None:
            # pCVR = pCTCVR / pCTR (ESMM), clipped so its logit is finite
            p[..., 1] = np.clip(p[..., 1] / p[..., 0], P_MIN, 1.0 - P_MIN)
        elif self.cvr_function is not None:
            cvr = np.clip(self.cvr_function(users, ads), P_MIN, 1.0 - P_MIN)
            p = np.concatenate([p, cvr[..., None]], axis=-1)
        return p

    def build_cache(self, users: Contexts) -> None:
        """Precompute the probability table of the whole population (``users.user_id`` = 0..n-1)."""
        if not np.array_equal(users.user_id, np.arange(len(users))):
            raise ValueError("the cache needs the full population with user_id = 0..n-1")
        self._table = self._predict(users, np.arange(self.n_actions))

    def probabilities(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K', 1 or 2)``: P(click) and, with conversions, P(conversion | click)."""
        ads_idx = np.arange(self.n_actions) if ads is None else np.asarray(ads, np.int64)
        if self._table is not None:
            t = self._table[contexts.user_id]
            return t if ads is None else t[:, ads_idx]
        return self._predict(contexts, ads_idx)

    def predict(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` P(click) for *any* contexts with this world's feature spec (no cache): the
        reward model q̂(x, a) of DM/DR estimators (``reward_model=truth.predict(contexts)``)."""
        p = network_probabilities(
            self.run, self.layout, self._tasks[:1], contexts, self.user_seq, self.ad_dense,
            self.ad_sparse, np.arange(self.n_actions), self.calibrated, self.device,
            self.batch_size,
        )
        return p[..., 0]

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

    def _check_conversions(self) -> None:
        if not self.has_conversions:
            raise ValueError("this world model has no conversion task")

    def cvr(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K')`` P(conversion | click)."""
        self._check_conversions()
        return self.probabilities(contexts, ads)[..., 1].copy()

    def ctcvr(self, contexts: Contexts, ads: np.ndarray | None = None) -> np.ndarray:
        """``(n, K')`` P(click ∧ conversion) = P(click) · P(conversion | click)."""
        self._check_conversions()
        p = self.probabilities(contexts, ads)
        return p[..., 0] * p[..., 1]

    def conversion_model(self, delay_mean: float = 0.0) -> ConversionModel:
        """A :class:`adsim.env.truth.ConversionModel` whose P(conversion | click) is :meth:`cvr`,
        with exponential delays of mean ``delay_mean`` hours (0 = immediate)."""
        self._check_conversions()
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
        p = self.base.cvr(contexts, ads)
        return np.log(p) - np.log1p(-p)

    def logits(self, contexts: Contexts) -> np.ndarray:
        return self.logits_for(contexts, np.arange(self.n_actions))

    def ctr(self, contexts: Contexts) -> np.ndarray:
        return self.base.cvr(contexts)
