"""AuctionGym's bidders, vectorised: each answers all of one agent's rows of a batch at once.

Reference behaviour: amzn/auction-gym ``src/Bidder.py`` (Jeunen, Murphy & Allison 2022).

* :class:`TruthfulBidder` — ``bid = value × estimated CTR`` (dominant in a second-price auction,
  Vickrey 1961).
* :class:`EmpiricalShadedBidder` — ``bid = γ · value × estimated CTR`` with a shading factor
  :math:`\\gamma \\sim N(\\gamma_{prev}, \\sigma_\\gamma^2)` clipped to [0, 1], drawn per bid. Between
  batches (:meth:`EmpiricalShadedBidder.update`) it bins the batch's γ's into buckets of width
  0.005 over ``[min γ, max γ]`` (``numpy.linspace``, a sample in bucket ``[lo, hi)``), takes each
  bucket's mean net utility :math:`\\bar u` (``won·(value·click − price)``) and standard error
  :math:`s/\\sqrt{n}` (buckets with ≤ 1 sample are skipped), and moves
  :math:`\\gamma_{prev}` to the bucket centre with the highest lower bound
  :math:`\\bar u - 1.96\\,s/\\sqrt n` (the last one among ties), clipped to [0, 1] — AuctionGym's
  algorithm, with per-bucket sums by ``numpy.bincount`` instead of a Python loop over buckets.
  Where every bucket is empty AuctionGym raises (``nanargmax`` of all-NaN); here γ is kept.

:func:`bidders_from_config` builds one bidder per agent from an AuctionGym config; each bidder owns
a generator spawned from one seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from adsim.env.engine import AgentBatch, expand_agents, load_auctiongym_config
from adsim.errors import ConfigError

__all__ = ["TruthfulBidder", "EmpiricalShadedBidder", "bidders_from_config", "BIDDERS"]


class TruthfulBidder:
    """``bid = value × estimated CTR``; does not learn."""

    learns = False
    truthful = True

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng

    def bid(self, value: np.ndarray, estimated_ctr: np.ndarray, context: np.ndarray) -> np.ndarray:
        return value * estimated_ctr

    def update(self, batch: AgentBatch) -> None:
        return None


class EmpiricalShadedBidder:
    """Multiplicative bid shading learnt from the last batch (see the module docstring).

    Args:
        rng: the bidder's own generator (γ draws).
        gamma_sigma: standard deviation of γ around ``gamma``.
        init_gamma: the first batch's centre.
    """

    learns = True
    truthful = False
    grid_delta = 0.005
    critical_value = 1.96

    def __init__(self, rng: np.random.Generator, gamma_sigma: float,
                 init_gamma: float = 1.0) -> None:
        if not gamma_sigma > 0:
            raise ValueError(f"gamma_sigma must be > 0, got {gamma_sigma}")
        self.rng = rng
        self.gamma_sigma = float(gamma_sigma)
        self.gamma = float(init_gamma)
        self.history = [self.gamma]
        self._gammas: list[np.ndarray] = []

    def bid(self, value: np.ndarray, estimated_ctr: np.ndarray, context: np.ndarray) -> np.ndarray:
        """γ · value · CTR per row; the γ's are kept until :meth:`update` (one batch's rows)."""
        g = self.rng.normal(self.gamma, self.gamma_sigma, size=value.shape[0])
        np.clip(g, 0.0, 1.0, out=g)
        self._gammas.append(g)
        return value * estimated_ctr * g

    def update(self, batch: AgentBatch) -> None:
        """Move γ to the bucket with the best lower confidence bound on net utility."""
        if not self._gammas:
            return
        gammas = np.concatenate(self._gammas)
        self._gammas = []
        if gammas.shape[0] != batch.value.shape[0]:
            raise ValueError(f"{gammas.shape[0]} shading factors for {batch.value.shape[0]} rows")
        util = np.where(batch.won, batch.value * batch.outcome - batch.price, 0.0)
        lo, hi = gammas.min(), gammas.max()
        n_buckets = int((hi - lo) // self.grid_delta) + 1
        edges = np.linspace(lo, hi, n_buckets)
        if n_buckets < 2:
            self.history.append(self.gamma)
            return
        centres = (edges[1:] - edges[:-1]) / 2.0 + edges[:-1]
        idx = np.searchsorted(edges, gammas, side="right") - 1  # edges[i] <= γ < edges[i+1]
        keep = (idx >= 0) & (idx < n_buckets - 1)
        idx, u = idx[keep], util[keep]
        m = n_buckets - 1
        count = np.bincount(idx, minlength=m)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.bincount(idx, u, minlength=m) / count
            dev = u - mean[idx]
            std = np.sqrt(np.bincount(idx, dev * dev, minlength=m) / count)
            lcb = np.where(count > 1, mean - self.critical_value * std / np.sqrt(count), np.nan)
        if np.isnan(lcb).all():
            self.history.append(self.gamma)
            return
        best = m - int(np.nanargmax(lcb[::-1])) - 1
        self.gamma = float(min(max(centres[best], 0.0), 1.0))
        self.history.append(self.gamma)


BIDDERS = {"TruthfulBidder": TruthfulBidder, "EmpiricalShadedBidder": EmpiricalShadedBidder}


def bidders_from_config(config: Any, seed: int | np.random.SeedSequence = 0) -> list[Any]:
    """One bidder per (expanded) agent of an AuctionGym config; generators spawned from ``seed``.

    Only AuctionGym's ``OracleAllocator`` is supported (see :mod:`adsim.env.engine`).
    """
    cfg = load_auctiongym_config(config)
    agents = expand_agents(cfg)
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    out = []
    for i, (agent, child) in enumerate(zip(agents, ss.spawn(len(agents)))):
        alloc = (agent.get("allocator") or {}).get("type", "OracleAllocator")
        if alloc != "OracleAllocator":
            raise ConfigError(
                f"agents[{i}].allocator.type: {alloc!r} is not supported by the vectorised engine;"
                " use OracleAllocator")
        spec = agent.get("bidder") or {}
        kind = spec.get("type")
        if kind not in BIDDERS:
            raise ConfigError(
                f"agents[{i}].bidder.type: {kind!r} is not supported; use one of {', '.join(BIDDERS)}")
        kwargs = dict(spec.get("kwargs") or {})
        try:
            out.append(BIDDERS[kind](rng=np.random.default_rng(child), **kwargs))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"agents[{i}].bidder.kwargs: {exc}") from None
    return out
