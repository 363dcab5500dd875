"""Ground-truth click models: the probabilities that define the world.

:class:`ParametricTruth` is a logistic model

.. math::

    \\operatorname{logit} p(\\text{click} \\mid u, k)
        = b_k + s \\, (x_u \\cdot e_k) + \\sum_f t_f[c_{uf}, k]

with user dense features :math:`x_u`, ad embedding :math:`e_k` (from the catalogue), per-ad bias
:math:`b_k`, effect scale :math:`s` and per-field tables :math:`t_f` over the user's category
:math:`c_{uf}`. Because every probability is known, so is the value of any policy.

Any object with ``logits(contexts) -> (n, K)`` and ``ctr(contexts) -> (n, K)`` can serve as a
truth (:class:`TruthModel`); :class:`TrainedTruth` wraps any batched logit function. A trained
CTR/CVR run becomes a world's truth in the world-model bridge (:mod:`adsim.worldmodel`), which
this core does not import. A truth that defines conversions itself says so with
``has_conversions = True`` and ``conversion_model(delay_mean) -> ConversionModel``; the auction
world then draws conversions from it instead of a parametric CVR model.

Auction extensions:

* **Position bias** (:class:`PositionModel`): the separable examination model
  P(click | u, k, slot j) = θ_j · p(click | u, k), θ non-increasing in the slot
  (Richardson et al. 2007; Craswell et al. 2008, the "examination hypothesis").
* **Conversions** (:class:`ConversionModel`): P(conversion | click, u, k) is a second logistic
  model of the same form; a conversion arrives after an exponential delay with mean
  ``delay_mean`` hours (0 = immediately), as in Chapelle (2014), "Modeling delayed feedback in
  display advertising".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import numpy as np
from scipy.special import expit, logit

from adsim.env.catalog import Catalog
from adsim.env.features import Contexts, FeatureSpec

__all__ = [
    "ConversionModel",
    "ParametricTruth",
    "PositionModel",
    "TrainedTruth",
    "TruthModel",
    "ad_logits",
]


@dataclass(frozen=True)
class ParametricTruth:
    """Logistic click model; see the module docstring for the formula.

    Attributes:
        bias: ``(K,)`` per-ad logit bias b_k.
        ad_emb: ``(K, n_dense)`` effect-scaled ad embeddings s·e_k.
        sparse_tables: one ``(vocab_f, K)`` table t_f per sparse field.
    """

    bias: np.ndarray
    ad_emb: np.ndarray
    sparse_tables: tuple[np.ndarray, ...]

    @property
    def n_actions(self) -> int:
        return int(self.bias.shape[0])

    @classmethod
    def random(
        cls,
        spec: FeatureSpec,
        catalog: Catalog,
        rng: np.random.Generator,
        *,
        base_ctr: float = 0.05,
        effect_scale: float = 1.0,
        ad_bias_sd: float = 0.5,
        sparse_effect_sd: float = 0.3,
    ) -> ParametricTruth:
        k = catalog.n_ads
        bias = logit(base_ctr) + ad_bias_sd * rng.standard_normal(k)
        emb = effect_scale * catalog.features
        tables = tuple(sparse_effect_sd * rng.standard_normal((v, k)) for v in spec.vocab_sizes)
        return cls(bias=bias, ad_emb=emb, sparse_tables=tables)

    def logits(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` click logits."""
        out = contexts.dense @ self.ad_emb.T  # (n, K)
        out += self.bias
        for j, table in enumerate(self.sparse_tables):
            out += table[contexts.sparse[:, j]]
        return out

    def ctr(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` click probabilities."""
        return expit(self.logits(contexts))

    def logits_for(self, contexts: Contexts, ads: np.ndarray) -> np.ndarray:
        """``(n, len(ads))`` logits of the given ads only (cheaper than all K when K is large)."""
        ads = np.asarray(ads, dtype=np.int64)
        out = contexts.dense @ self.ad_emb[ads].T
        out += self.bias[ads]
        for j, table in enumerate(self.sparse_tables):
            out += table[contexts.sparse[:, j]][:, ads]
        return out

    def scores(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` log click probabilities (a scorer that ranks by true CTR)."""
        return -np.logaddexp(0.0, -self.logits(contexts))

    def perturbed(self, noise: float, rng: np.random.Generator) -> ParametricTruth:
        """A 'production model' that is never quite right: every parameter plus N(0, noise²)."""
        return replace(
            self,
            bias=self.bias + noise * rng.standard_normal(self.bias.shape),
            ad_emb=self.ad_emb + noise * rng.standard_normal(self.ad_emb.shape),
            sparse_tables=tuple(
                t + noise * rng.standard_normal(t.shape) for t in self.sparse_tables
            ),
        )


@runtime_checkable
class TruthModel(Protocol):
    """What the world needs from a click (or conversion) model."""

    @property
    def n_actions(self) -> int: ...

    def logits(self, contexts: Contexts) -> np.ndarray: ...

    def ctr(self, contexts: Contexts) -> np.ndarray: ...


def ad_logits(truth: TruthModel, contexts: Contexts, ads: np.ndarray) -> np.ndarray:
    """``(n, len(ads))`` logits of some ads, using ``truth.logits_for`` when it has one."""
    f = getattr(truth, "logits_for", None)
    if f is not None:
        return f(contexts, ads)
    return truth.logits(contexts)[:, np.asarray(ads, dtype=np.int64)]


@dataclass(frozen=True)
class TrainedTruth:
    """A trained model as the world's truth (the hook for :mod:`adsim.models`).

    Wraps any ``predict_logits(contexts) -> (n, K)`` callable, e.g. a calibrated CTR network
    exported from the training pipeline; its probabilities then *define* the world, so exact
    oracles stay exact with respect to it.

    Attributes:
        predict_logits: batched logit function.
        n_ads: number of ads K it scores.
    """

    predict_logits: Callable[[Contexts], np.ndarray]
    n_ads: int

    @property
    def n_actions(self) -> int:
        return self.n_ads

    def logits(self, contexts: Contexts) -> np.ndarray:
        out = np.asarray(self.predict_logits(contexts), dtype=np.float64)
        if out.shape != (len(contexts), self.n_ads):
            raise ValueError(
                f"predict_logits returned shape {out.shape}, expected {(len(contexts), self.n_ads)}"
            )
        return out

    def ctr(self, contexts: Contexts) -> np.ndarray:
        return expit(self.logits(contexts))

    def scores(self, contexts: Contexts) -> np.ndarray:
        return -np.logaddexp(0.0, -self.logits(contexts))


@dataclass(frozen=True)
class PositionModel:
    """Examination probabilities θ_j per slot: P(click | slot j) = θ_j · CTR (see module doc)."""

    examination: np.ndarray

    def __post_init__(self) -> None:
        t = np.asarray(self.examination, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or np.any(t <= 0) or np.any(t > 1) or np.any(np.diff(t) > 0):
            raise ValueError("examination must be a non-empty, non-increasing list in (0, 1]")
        object.__setattr__(self, "examination", t)

    @property
    def n_slots(self) -> int:
        return int(self.examination.shape[0])

    def click_prob(self, ctr: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """θ_slot · ctr; slot -1 (not shown) gives 0."""
        theta = np.append(self.examination, 0.0)  # index -1 -> 0
        return ctr * theta[slot]


@dataclass(frozen=True)
class ConversionModel:
    """Post-click conversion probabilities and delays (see module docstring).

    Attributes:
        truth: logistic model of P(conversion | click, u, k).
        delay_mean: mean delay in hours of the exponential delay (0 = immediate).
    """

    truth: ParametricTruth
    delay_mean: float = 0.0

    def cvr(self, contexts: Contexts, ads: np.ndarray) -> np.ndarray:
        """``(n, len(ads))`` conversion probabilities given a click."""
        return expit(ad_logits(self.truth, contexts, ads))

    def sample_delays(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` delays in hours."""
        if self.delay_mean <= 0:
            return np.zeros(n)
        return rng.exponential(self.delay_mean, size=n)
