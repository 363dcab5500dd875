"""A totals-only throughput kernel for AuctionGym's ``SP_Oracle`` market (truthful oracles only).

:class:`SecondPriceOracleSim` simulates AuctionGym's ``SP_Oracle`` setting (Jeunen, Murphy &
Allison 2022, amzn/auction-gym): ``n_agents`` truthful bidders, each with ``n_items`` ads
(N(0, I) embeddings ``e``, an optional per-item intercept ``b`` and log-normal values ``v``);
every round draws a Gaussian context ``x ~ N(0, I_d)`` and ``n_participants = 2`` distinct agents
uniformly at random. Each participant picks the ad maximising ``v_j · σ(x·e_j + b_j)`` and bids
that (truthful, exact CTR), the higher bid wins the single slot and pays the lower one (Vickrey
1961), and the impression is clicked with probability ``σ(x·e_j* + b_j*)``.

It returns **totals only** (revenue, clicks, wins and spend per agent) and its bidding is fixed
to truthful oracle bids, so it cannot host a learning bidder and produces no per-round records.
For AuctionGym's per-round work (records, net/gross utility, pluggable and learning bidders) use
:class:`adsim.env.engine.AuctionEngine`. :meth:`SecondPriceOracleSim.from_world` takes the exact
market of an :class:`~adsim.env.engine.AuctionGymWorld` (AuctionGym's ads, intercepts and values
for a config); the default constructor draws an intercept-free market of its own.

What makes it fast (plain numpy, one thread, float32):

* rounds are i.i.d., so instead of drawing a pair per round the kernel draws how many rounds each
  of the 15 unordered pairs gets (one multinomial) and simulates each pair's rounds as a block —
  the same distribution, with no per-round gathers and only the two participants' 24 ads;
* items live on rows, rounds on columns (``(24, m)``), so per-item reductions are row-wise, and
  the logits of a block are one ``(24, 6) @ (6, m)`` float32 product (log-values folded in);
* ``argmax_j v_j σ(z_j) = argmin_j g_j`` with ``g_j = (1 + e^{-z_j}) / v_j = 1/v_j +
  e^{-z_j - log v_j}``: one ``exp`` per ad with ``log v`` folded into the affine map, no division;
  the bid is ``1/g*``, the winner's CTR ``1/(v* g*)``, the price ``1/max(g*_a, g*_b)``;
* the chosen ad's value comes without an argmin: ``[v; 1] @ 1{g_j = g*}`` (one tiny matrix
  product) gives ``v*`` and the number of ads at the minimum, exact ties are resolved separately;
* every buffer is preallocated and every ufunc writes in place (``out=``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

__all__ = ["SecondPriceOracleSim", "SimTotals"]


@dataclass
class SimTotals:
    """Running totals of a simulation (per agent arrays have length ``n_agents``)."""

    n_rounds: int = 0
    revenue: float = 0.0
    clicks: float = 0.0
    wins: np.ndarray = field(default_factory=lambda: np.zeros(0))
    spend: np.ndarray = field(default_factory=lambda: np.zeros(0))


class SecondPriceOracleSim:
    """AuctionGym ``SP_Oracle``-style second-price world (see the module docstring).

    Args:
        rng: generator for the agents' ads (embeddings N(0, 1), values log-normal(0.1, 0.2)).
        n_agents: bidders (6 in SP_Oracle).
        n_items: ads per bidder (12).
        dim: context / embedding dimension (5).
        chunk: rounds per block (buffers are sized for it; keeps the working set in cache).
        emb, values, intercept: a given market instead of a drawn one: ``(n_agents, n_items,
            dim)`` embeddings, ``(n_agents, n_items)`` values and optional intercepts.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n_agents: int = 6,
        n_items: int = 12,
        dim: int = 5,
        chunk: int = 16_384,
        emb: np.ndarray | None = None,
        values: np.ndarray | None = None,
        intercept: np.ndarray | None = None,
    ) -> None:
        if emb is not None and values is not None:
            n_agents, n_items, dim = emb.shape
            self.emb, self.values = np.asarray(emb, float), np.asarray(values, float)
        else:
            self.emb = rng.standard_normal((n_agents, n_items, dim))
            self.values = rng.lognormal(0.1, 0.2, (n_agents, n_items))
        self.intercept = (np.zeros((n_agents, n_items)) if intercept is None
                          else np.asarray(intercept, float))
        self.n_agents, self.n_items, self.dim, self.chunk = n_agents, n_items, dim, chunk
        self.pairs = list(combinations(range(n_agents), 2))
        self._pair_p = np.full(len(self.pairs), 1.0 / len(self.pairs))
        two = 2 * n_items
        self._v1: list[np.ndarray] = []
        self._w = []  # per pair: (two, dim) weights of -z, (two,) offsets, 1/v and v rows
        for a, b in self.pairs:
            e = np.concatenate([self.emb[a], self.emb[b]])  # (24, d)
            v = np.concatenate([self.values[a], self.values[b]])
            icpt = np.concatenate([self.intercept[a], self.intercept[b]])
            self._v1.append(np.stack([
                np.stack([v[:n_items], np.ones(n_items)]),
                np.stack([v[n_items:], np.ones(n_items)]),
            ]).astype(np.float32))  # per side: (2, n_items) rows [v; 1]
            self._w.append((
                # rows: -e_j and -b_j - log v_j (the affine map as one (24, d+1) matrix)
                np.concatenate([-e, (-icpt - np.log(v))[:, None]], axis=1).astype(np.float32),
                None,
                (1.0 / v).astype(np.float32)[:, None],
                v.astype(np.float32),
            ))
        m = chunk
        self._ctx = np.empty((dim + 1) * m, np.float32)  # flat: sliced per block, contiguous
        self._z = np.empty(two * m, np.float32)
        self._best = np.empty(2 * m, np.float32)
        self._vbest = np.empty(2 * m, np.float32)
        self._mask = np.empty(m, bool)
        self._eq = np.empty(n_items * m, np.float32)
        self._vc = np.empty(2 * m, np.float32)
        self._u = np.empty(m, np.float32)
        self._f = np.empty(m, np.float32)
        self._g = np.empty(m, np.float32)

    @classmethod
    def from_world(cls, world, chunk: int = 16_384) -> SecondPriceOracleSim:  # noqa: ANN001
        """The kernel on an :class:`~adsim.env.engine.AuctionGymWorld`'s exact market (second
        price, two participants; the world's intercept column, if any, becomes ``intercept``)."""
        if world.n_participants != 2 or world.mechanism != "second_price":
            raise ValueError("the kernel simulates second price with 2 participants only")
        items = world.items
        if world.intercept:
            return cls(np.random.default_rng(0), chunk=chunk, emb=items[:, :, :-1],
                       values=world.values, intercept=items[:, :, -1])
        return cls(np.random.default_rng(0), chunk=chunk, emb=items, values=world.values)

    def simulate(self, n_rounds: int, rng: np.random.Generator) -> SimTotals:
        """Simulate ``n_rounds`` rounds; returns revenue, clicks and per-agent wins/spend.

        The small (24 × 6) @ (6 × m) products run on one BLAS thread (threadpoolctl, when
        available): splitting them over threads only adds synchronisation.
        """
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
            return self._simulate(n_rounds, rng)
        with threadpool_limits(1, user_api="blas"):
            return self._simulate(n_rounds, rng)

    def _simulate(self, n_rounds: int, rng: np.random.Generator) -> SimTotals:
        tot = SimTotals(
            wins=np.zeros(self.n_agents), spend=np.zeros(self.n_agents)
        )
        done = 0
        while done < n_rounds:
            n = min(self.chunk, n_rounds - done)
            counts = rng.multinomial(n, self._pair_p)
            for p, m in enumerate(counts.tolist()):
                if m:
                    self._pair_block(p, m, rng, tot)
            done += n
        tot.n_rounds = n_rounds
        return tot

    def _pair_block(self, p: int, m: int, rng: np.random.Generator, tot: SimTotals) -> None:
        w, _, inv_v, v = self._w[p]
        k, d = self.n_items, self.dim
        ctx = self._ctx[: (d + 1) * m].reshape(d + 1, m)
        z = self._z[: 2 * k * m].reshape(2 * k, m)
        rng.standard_normal(dtype=np.float32, out=self._ctx[: d * m])
        ctx[d].fill(1.0)
        # z = -x·e - log v  (rows: the two participants' 24 ads), one small matrix product
        np.matmul(w, ctx, out=z)
        np.exp(z, out=z)
        z += inv_v  # g_j = (1 + e^{-x·e_j}) / v_j ; the best ad minimises g
        best = self._best[: 2 * m].reshape(2, m)
        vbest = self._vbest[: 2 * m].reshape(2, m)
        eq = self._eq[: k * m].reshape(k, m)
        vc = self._vc[: 2 * m].reshape(2, m)
        mask = self._mask[:m]
        for side in (0, 1):
            rows = z[side * k : (side + 1) * k]
            np.min(rows, axis=0, out=best[side])  # g* (row-wise reduction: fast)
            # value of the argmin ad without argmin: [v; 1] @ 1{g_j == g*} gives v* and the
            # number of ads at the minimum (ties are fixed exactly below)
            np.equal(rows, best[side], out=eq, casting="unsafe")
            np.matmul(self._v1[p][side], eq, out=vc)
            vbest[side] = vc[0]
            ties = np.flatnonzero(vc[1] > 1.5)
            if ties.size:  # equal g for two ads: the first one (argmin's rule) is chosen
                vbest[side, ties] = v[side * k + rows[:, ties].argmin(axis=0)]
        ga, gb = best[0], best[1]
        a_wins = np.less_equal(ga, gb, out=mask)  # higher bid 1/g wins; ties to the first agent
        g_win = np.minimum(ga, gb, out=self._g[:m])
        g_lose = np.maximum(ga, gb, out=self._f[:m])
        price = np.reciprocal(g_lose, out=g_lose)  # second price = the lower bid
        revenue = float(price.sum(dtype=np.float64))
        spend_a = float(np.dot(price, a_wins.astype(np.float32)))
        n_a = int(np.count_nonzero(a_wins))
        # click iff u < σ(z*) = 1 / (v* g*)  ⇔  u · v* · g* < 1
        np.copyto(vbest[0], vbest[1], where=~a_wins)
        u = rng.random(dtype=np.float32, out=self._u[:m])
        u *= vbest[0]
        u *= g_win
        clicks = int(np.count_nonzero(u < 1.0))
        a, b = self.pairs[p]
        tot.revenue += revenue
        tot.clicks += clicks
        tot.wins[a] += n_a
        tot.wins[b] += m - n_a
        tot.spend[a] += spend_a
        tot.spend[b] += revenue - spend_a
