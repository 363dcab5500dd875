"""Competing demand: the bidders an adsim campaign meets in the auction besides other campaigns.

Two models, both answering a batch of requests at once:

* :class:`LogNormalMarket` — ``m`` competitors whose rank scores are i.i.d. log-normal,
  ``d = exp(μ + σ Z)``. With one competitor ``d`` is the classic *market price*: in a
  second-price auction a bid ``b`` wins iff ``b >= max(d, r)`` and pays ``max(d, r)``. It has
  closed-form win probability and expected payment (:meth:`LogNormalMarket.win_prob`,
  :meth:`LogNormalMarket.expected_payment`), which make bidding values exact, and can be fitted to
  observed winning prices by maximum likelihood (:func:`fit_lognormal_market`; the log-normal is
  the usual parametric market-price model, e.g. Cui et al. 2011, "Bid landscape forecasting in
  online ad exchange marketplaces").
* :class:`TruthfulMarket` — ``m`` competing value bidders, each owning a world ad, who bid their
  value per click × the true CTR of their ad for the request (their eCPM), so competition is
  correlated with the user like in a real exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from adsim.env.features import Contexts
from adsim.env.truth import TruthModel, ad_logits

__all__ = ["LogNormalMarket", "TruthfulMarket", "fit_lognormal_market", "Competition"]


@dataclass(frozen=True)
class Competition:
    """Competing bids for a batch: ``bids`` and rank ``weights``, both ``(n, m)``."""

    bids: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class LogNormalMarket:
    """``n_competitors`` i.i.d. log-normal(μ, σ²) rank scores per request (see module doc)."""

    mu: float = -1.0
    sigma: float = 0.5
    n_competitors: int = 1

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``(n, n_competitors)`` competing rank scores."""
        z = rng.standard_normal((n, self.n_competitors))
        return np.exp(self.mu + self.sigma * z)

    def competition(
        self, contexts: Contexts, rng: np.random.Generator, ranking: str = "bid"
    ) -> Competition:
        d = self.sample(len(contexts), rng)
        return Competition(bids=d, weights=np.ones_like(d))

    def _single(self) -> None:
        if self.n_competitors != 1:
            raise ValueError("closed forms need a single competitor (the market price)")

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """P(d <= x) of the market price."""
        self._single()
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore"):
            z = (np.log(np.maximum(x, 0.0)) - self.mu) / max(self.sigma, 1e-300)
        return ndtr(z)

    def win_prob(self, score: np.ndarray, reserve: float = 0.0) -> np.ndarray:
        """P(win) of rank score ``score`` in a second-price auction with reserve ``r``:
        ``1{score >= r} · F(score)``."""
        score = np.asarray(score, dtype=np.float64)
        return np.where(score >= reserve, self.cdf(score), 0.0) * (score > 0)

    def expected_payment(self, score: np.ndarray, reserve: float = 0.0) -> np.ndarray:
        """E[max(d, r) · 1{d <= s}] · 1{s >= r} (second price, rank-score units).

        With ``d ~ logN(μ, σ²)``: E[d · 1{d <= s}] = e^{μ+σ²/2} Φ((ln s − μ − σ²)/σ), so the
        payment is ``r F(r) + e^{μ+σ²/2} [Φ(a_s) − Φ(a_r)]`` with ``a_x = (ln x − μ − σ²)/σ``.
        """
        self._single()
        s = np.asarray(score, dtype=np.float64)
        mu, sig = self.mu, max(self.sigma, 1e-300)
        m1 = np.exp(mu + 0.5 * sig**2)

        def partial(x: np.ndarray | float) -> np.ndarray:
            with np.errstate(divide="ignore"):
                return m1 * ndtr((np.log(np.maximum(x, 0.0)) - mu - sig**2) / sig)

        r = float(reserve)
        pay = partial(s) - (partial(r) if r > 0 else 0.0)
        if r > 0:
            pay = pay + r * self.cdf(np.array(r))
        return np.where((s >= r) & (s > 0), pay, 0.0)


def fit_lognormal_market(prices: np.ndarray) -> LogNormalMarket:
    """Maximum-likelihood log-normal fit to observed (positive) market prices."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[p > 0]
    if p.size < 2:
        raise ValueError("need at least two positive prices to fit a log-normal market")
    logs = np.log(p)
    return LogNormalMarket(mu=float(logs.mean()), sigma=float(logs.std()), n_competitors=1)


@dataclass(frozen=True)
class TruthfulMarket:
    """Competing value bidders with their own ads (see module doc).

    Attributes:
        ads: ``(m,)`` world ads they show.
        values: ``(m,)`` value per click of each.
        truth: the world's click model.
    """

    ads: np.ndarray
    values: np.ndarray
    truth: TruthModel

    def competition(
        self, contexts: Contexts, rng: np.random.Generator, ranking: str = "bid"
    ) -> Competition:
        ctr = 1.0 / (1.0 + np.exp(-ad_logits(self.truth, contexts, self.ads)))  # (n, m)
        if ranking == "ecpm":  # bid per click, ranked by bid × CTR
            return Competition(bids=np.broadcast_to(self.values, ctr.shape).copy(), weights=ctr)
        return Competition(bids=ctr * self.values, weights=np.ones_like(ctr))
