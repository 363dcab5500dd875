"""Logging bidders that explore: a base bid rule randomised with a known density.

Off-policy evaluation of a bid rule needs logs where the bid was randomised and its propensity
recorded, just as a bandit log records π0(a|x). :class:`ExplorationBidder` wraps any base bidding
policy ``b0(x)`` and bids

.. math::  B = b_0(x) \\cdot M, \\qquad M \\perp (x, \\text{market}) ,

with the multiplier ``M`` drawn from one of two known laws:

* **log-normal** (:class:`LogNormalExploration`): ``log M ~ N(μ, σ²)``; the recorded propensity
  is the *density of the bid given the context*,

  .. math::  f_0(B \\mid x) = \\frac{1}{\\sigma B}\\,
             \\varphi\\!\\left(\\frac{\\log(B / b_0(x)) - \\mu}{\\sigma}\\right),

  so the density of the log-bid ``T = log B`` is ``g_0(T|x) = B f_0(B|x)``;
* **grid** (:class:`GridExploration`): ``M = m_k`` with probability ``p_k``; the recorded
  propensity is ``p_k`` (a probability mass, as in a discrete bandit log).

After each :meth:`ExplorationBidder.bid` the last batch's base bids, multipliers and propensities
are available as ``last_base``, ``last_multiplier`` and ``last_propensity`` (the auction log
writer reads them). Requests the base rule does not bid on (bid 0, or ineligible) get bid 0 and
propensity NaN.

References:
    N. Kallus, A. Zhou (2018). Policy evaluation and optimization with continuous treatments.
    AISTATS (log-bid as a continuous treatment with a known density).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from adsim.policies.base import BidderState, BiddingPolicy, BidOutcome, BidRequests

__all__ = ["ExplorationBidder", "GridExploration", "LogNormalExploration"]

_LOG_SQRT_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class LogNormalExploration:
    """``log M ~ N(mu, sigma²)`` (``mu = 0``: the median bid is the base bid)."""

    sigma: float
    mu: float = 0.0
    kind: str = field(default="lognormal", init=False)

    def __post_init__(self) -> None:
        if not self.sigma > 0:
            raise ValueError(f"sigma must be > 0, got {self.sigma}")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n,)`` multipliers."""
        return np.exp(self.mu + self.sigma * rng.standard_normal(n))

    def log_density(self, log_multiplier: np.ndarray) -> np.ndarray:
        """log of the density of ``T − log b0 = log M`` (the log-bid's density given x)."""
        z = (np.asarray(log_multiplier, dtype=np.float64) - self.mu) / self.sigma
        return -0.5 * z * z - _LOG_SQRT_2PI - np.log(self.sigma)

    def propensity(self, bids: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Density f0(B | x) of the bid itself: g0(log B | x) / B."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.exp(self.log_density(np.log(bids / base))) / bids

    def to_dict(self) -> dict[str, object]:
        return {"type": "lognormal", "sigma": self.sigma, "mu": self.mu}


@dataclass(frozen=True)
class GridExploration:
    """``M = multipliers[k]`` with probability ``probs[k]``."""

    multipliers: tuple[float, ...]
    probs: tuple[float, ...]
    kind: str = field(default="grid", init=False)

    def __post_init__(self) -> None:
        m = np.asarray(self.multipliers, dtype=np.float64)
        p = np.asarray(self.probs, dtype=np.float64)
        if m.ndim != 1 or m.size < 1 or m.shape != p.shape:
            raise ValueError("multipliers and probs must be non-empty lists of the same length")
        if np.any(m <= 0) or np.unique(m).size != m.size:
            raise ValueError("multipliers must be distinct and > 0")
        if np.any(p <= 0) or abs(p.sum() - 1.0) > 1e-9:
            raise ValueError("probs must be > 0 and sum to 1")

    def sample_index(self, n: int, rng: np.random.Generator) -> np.ndarray:
        cdf = np.cumsum(self.probs)
        return np.minimum(np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right"),
                          len(self.probs) - 1)

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.multipliers)[self.sample_index(n, rng)]

    def to_dict(self) -> dict[str, object]:
        return {"type": "grid", "multipliers": list(self.multipliers), "probs": list(self.probs)}


class ExplorationBidder(BiddingPolicy):
    """Bid ``base(x) × M`` with ``M`` from a known exploration law (see the module docstring).

    Args:
        base: the base bidding policy b0 (its ``update``/``reset`` are forwarded).
        exploration: :class:`LogNormalExploration` or :class:`GridExploration`.
        seed: seed of the bidder's own generator (the multipliers).
    """

    name = "exploration"

    def __init__(
        self, base: BiddingPolicy, exploration: LogNormalExploration | GridExploration,
        seed: int = 0,
    ) -> None:
        self.base = base
        self.exploration = exploration
        self._rng = np.random.default_rng(seed)
        self.last_base = np.zeros(0)
        self.last_multiplier = np.zeros(0)
        self.last_propensity = np.zeros(0)

    def bid(self, requests: BidRequests, state: BidderState) -> np.ndarray:
        base = np.asarray(self.base.bid(requests, state), dtype=np.float64)
        n = base.shape[0]
        ex = self.exploration
        active = requests.eligible & (base > 0)
        if isinstance(ex, GridExploration):
            k = ex.sample_index(n, self._rng)
            mult = np.asarray(ex.multipliers)[k]
            prop = np.asarray(ex.probs)[k]
        else:
            z = self._rng.standard_normal(n)
            mult = np.exp(ex.mu + ex.sigma * z)
            # f0(B|x) = φ(z) / (σ B), with B = base · M
            with np.errstate(divide="ignore", invalid="ignore"):
                prop = np.exp(-0.5 * z * z - _LOG_SQRT_2PI) / (ex.sigma * base * mult)
        bids = np.where(active, base * mult, 0.0)
        self.last_base = np.where(active, base, 0.0)
        self.last_multiplier = np.where(active, mult, np.nan)
        self.last_propensity = np.where(active, prop, np.nan)
        return bids

    def spend_limit(self, state: BidderState) -> float:
        return self.base.spend_limit(state)

    def update(self, outcome: BidOutcome) -> None:
        self.base.update(outcome)

    def reset(self) -> None:
        self.base.reset()
