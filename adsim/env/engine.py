"""A vectorised auction engine that does AuctionGym's work per round, for a whole batch at once.

**The world** (:class:`AuctionGymWorld`) is AuctionGym's (Jeunen, Murphy & Allison 2022,
amzn/auction-gym ``src/main.py::parse_config``): ``n_agents`` advertisers with ``n_items`` ads
each; ad embeddings :math:`e_{aj} \\sim N(0, \\sigma_e^2 I_d)` with a per-item intercept column
:math:`b_{aj} = -3 - U(0, 1)`, values :math:`v_{aj} \\sim \\text{LogNormal}(0.1, 0.2)`.
:meth:`AuctionGymWorld.from_config` draws them from ``numpy.random.default_rng(random_seed)`` in
AuctionGym's order, so the same ``config/*.json`` gives the *same* ads and values (bit for bit) as
AuctionGym itself; ``intercept=False`` drops the intercept column (the world of
:mod:`adsim.env.fastpath`).

**A round** (AuctionGym ``Auction.simulate_opportunity`` with its ``OracleAllocator``):

1. context :math:`x = (z, 1)`, :math:`z \\sim N(0, \\sigma_e^2 I_d)`;
2. ``n_participants`` distinct agents drawn uniformly;
3. each participant scores its ads with the true CTR :math:`\\sigma(x \\cdot e_{aj})`, picks
   :math:`j^* = \\arg\\max_j v_{aj}\\,\\sigma(x\\cdot e_{aj})` and asks its bidder for a bid given
   (value, estimated CTR, context);
4. the highest bid wins (ties: first participant drawn); price = second-highest bid
   (``second_price``) or the winning bid (``first_price``); ``second_price`` = second-highest bid;
5. click :math:`\\sim \\text{Bernoulli}(\\sigma(x \\cdot e_{w j^*}))`; the winner's net utility
   grows by ``value·click − price``, its gross utility by ``value·click``.

Every step runs on arrays over the batch: contexts and participant draws for all rounds at once,
then one pass per *agent* over the rounds it takes part in (its bidder answers those rows in one
call), then allocation, prices and clicks for all rounds. Per-round records
(:class:`~adsim.env.records.RoundRecords`, Arrow/parquet) are optional: ``records=False`` returns
only the totals. Learning bidders are updated between batches with their own rows
(:meth:`AuctionEngine.run_iterations`), as AuctionGym's ``main.py`` updates agents between
iterations.

**Random streams.** One :class:`numpy.random.SeedSequence` spawns three generators: contexts,
participants and clicks; bidders own theirs. Each stream is consumed in round order, element by
element, so a plain per-round loop that draws ``normal(0, σ, d)``, ``random(k)`` and ``random()``
from the same streams reproduces a batch exactly (the engine's test does this). Participants are
drawn by the "rank among the unused" method from uniforms: the j-th pick is
:math:`\\lfloor u_j (N - j)\\rfloor`-th smallest agent not yet picked. Clicks are ``u < CTR``.
AuctionGym draws from one shared generator (``rng.choice``, ``rng.binomial``), so the two produce
the same distributions, not the same draws.

Not modelled: AuctionGym's learnt allocators (``PyTorchLogisticRegressionAllocator``): every
participant here scores its ads with the true CTR (the Oracle allocator); multiple slots
(AuctionGym fixes ``max_slots = 1``).
"""

from __future__ import annotations

import json
import os
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from adsim.env.records import AgentTotals, RoundRecords
from adsim.errors import ConfigError

__all__ = [
    "AuctionGymWorld",
    "AgentBatch",
    "VectorBidder",
    "AuctionEngine",
    "BatchResult",
    "expand_agents",
    "load_auctiongym_config",
    "SP_ORACLE",
]

#: AuctionGym's ``config/SP_Oracle.json`` (amzn/auction-gym 62216d8, Apache-2.0) as a dict:
#: 6 truthful oracle bidders × 12 ads, 2 participants per round, second price.
SP_ORACLE: dict[str, Any] = {
    "random_seed": 0, "num_runs": 3, "num_iter": 20, "rounds_per_iter": 10000,
    "num_participants_per_round": 2, "embedding_size": 5, "embedding_var": 1.0,
    "obs_embedding_size": 4, "allocation": "SecondPrice",
    "agents": [{"name": "Truthful Oracle", "num_copies": 6, "num_items": 12,
                "allocator": {"type": "OracleAllocator", "kwargs": {}},
                "bidder": {"type": "TruthfulBidder", "kwargs": {}}}],
    "output_dir": "results/SP_Oracle/",
}

Mechanism = Literal["second_price", "first_price"]
_MECHANISMS = {"SecondPrice": "second_price", "FirstPrice": "first_price"}


@dataclass(frozen=True)
class AgentBatch:
    """One agent's rows of a batch, in round order (what a learning bidder updates on)."""

    context: np.ndarray  # (m, dim)
    value: np.ndarray
    estimated_ctr: np.ndarray
    bid: np.ndarray
    price: np.ndarray
    second_price: np.ndarray
    outcome: np.ndarray
    won: np.ndarray


class VectorBidder(Protocol):
    """A bidder answering all of one agent's rows of a batch at once.

    ``bid`` returns ``(m,)`` bids for the agent's ``m`` rows; ``update`` is called after each
    batch of :meth:`AuctionEngine.run_iterations` when ``learns`` is true.
    """

    learns: bool

    def bid(self, value: np.ndarray, estimated_ctr: np.ndarray, context: np.ndarray) -> np.ndarray: ...

    def update(self, batch: AgentBatch) -> None: ...


def load_auctiongym_config(config: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """An AuctionGym ``config/*.json`` as a dict (a path is read; a dict is returned as is)."""
    if isinstance(config, dict):
        return config
    path = Path(config)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: AuctionGym config not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def expand_agents(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """AuctionGym's agent list with ``num_copies`` expanded and names numbered as it does."""
    out: list[dict[str, Any]] = []
    for i, agent in enumerate(_field(cfg, "agents", list)):
        if not isinstance(agent, dict) or "num_items" not in agent:
            raise ConfigError(f"agents[{i}]: needs a mapping with 'num_items'")
        if "num_copies" in agent:
            for _ in range(int(agent["num_copies"])):
                copy = deepcopy(agent)
                copy["name"] = f"{agent.get('name', 'agent')} {len(out) + 1}"
                out.append(copy)
        else:
            out.append(agent)
    if len(out) < 2:
        raise ConfigError(f"agents: an auction needs at least 2 agents, got {len(out)}")
    return out


def _field(cfg: dict[str, Any], key: str, kind: type) -> Any:
    if key not in cfg:
        raise ConfigError(f"AuctionGym config: missing field {key!r}")
    v = cfg[key]
    if kind is float and isinstance(v, int) and not isinstance(v, bool):
        v = float(v)
    if not isinstance(v, kind) or isinstance(v, bool):
        raise ConfigError(f"AuctionGym config: field {key!r} must be {kind.__name__}, got {v!r}")
    return v


@dataclass(frozen=True)
class AuctionGymWorld:
    """Ads, values and round settings of an AuctionGym market (see the module docstring).

    Attributes:
        items: ``(n_agents, n_items, dim)`` embeddings; the last column is the intercept when the
            world has one (the context's last entry is then 1).
        values: ``(n_agents, n_items)`` value of a click on each ad.
        embedding_size: d, the number of Gaussian context entries.
        embedding_var: σ_e, the *standard deviation* of contexts and embeddings (AuctionGym's
            name; it is passed to ``rng.normal`` as the scale).
        n_participants: agents drawn per round.
        mechanism: ``"second_price"`` or ``"first_price"``.
        names: agent names (AuctionGym's, copies numbered).
    """

    items: np.ndarray
    values: np.ndarray
    embedding_size: int
    embedding_var: float
    n_participants: int
    mechanism: Mechanism = "second_price"
    names: tuple[str, ...] = ()

    @property
    def n_agents(self) -> int:
        return int(self.items.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.items.shape[1])

    @property
    def intercept(self) -> bool:
        return self.items.shape[2] == self.embedding_size + 1

    @classmethod
    def from_config(
        cls, config: str | os.PathLike[str] | dict[str, Any], intercept: bool = True
    ) -> AuctionGymWorld:
        """The market an AuctionGym config describes, drawn exactly as ``parse_config`` does."""
        cfg = load_auctiongym_config(config)
        agents = expand_agents(cfg)
        n_items = {int(a["num_items"]) for a in agents}
        if len(n_items) != 1:
            raise ConfigError(f"agents: all agents must have the same num_items, got {sorted(n_items)}")
        k = int(_field(cfg, "num_participants_per_round", int))
        if not 2 <= k <= len(agents):
            raise ConfigError(
                f"num_participants_per_round must be in [2, {len(agents)}] (the number of"
                f" agents), got {k}")
        alloc = _field(cfg, "allocation", str)
        if alloc not in _MECHANISMS:
            raise ConfigError(f"allocation: {alloc!r} is not supported; use {' or '.join(_MECHANISMS)}")
        d = int(_field(cfg, "embedding_size", int))
        var = float(_field(cfg, "embedding_var", float))
        rng = np.random.default_rng(int(_field(cfg, "random_seed", int)))
        # AuctionGym's order: all embeddings, then all values, then all intercepts
        emb = [rng.normal(0.0, var, size=(int(a["num_items"]), d)) for a in agents]
        vals = [rng.lognormal(0.1, 0.2, int(a["num_items"])) for a in agents]
        if intercept:
            emb = [np.hstack((e, -3.0 - 1.0 * rng.random((e.shape[0], 1)))) for e in emb]
        return cls(np.stack(emb), np.stack(vals), d, var, k, _MECHANISMS[alloc],  # type: ignore[arg-type]
                   tuple(str(a.get("name", f"agent {i}")) for i, a in enumerate(agents)))


@dataclass
class BatchResult:
    """What :meth:`AuctionEngine.run` returns: the batch's records (or None) and its totals."""

    records: RoundRecords | None
    totals: AgentTotals
    #: the rows learning bidders update on (the same object as ``records`` when kept)
    update_rows: RoundRecords | None = field(default=None, repr=False)


def _ctr_columns(x_t: np.ndarray, neg_items: np.ndarray, unit_last: bool = False,
                 chunk: int = 4096) -> np.ndarray:
    """σ(x · e_j) as an ``(I, m)`` array for context columns ``x_t`` ``(D, m)`` and ads ``-e_j``
    (rows of ``neg_items`` ``(I, D)``).

    The dot product is accumulated term by term in a fixed order (x_0 e_0 + x_1 e_1 + …), so a
    per-round loop doing the same sum gets the same bits; with ``unit_last`` the last context
    entry is 1 and its term is added without the (exact) multiplication. Ads on rows and rounds
    on columns keep every operation a contiguous row sweep; blocks of ``chunk`` rounds keep the
    working set in cache.
    """
    n_items, dim = neg_items.shape
    m = x_t.shape[1]
    out = np.empty((n_items, m))
    tmp = np.empty((n_items, min(chunk, m)))
    last = dim - 1 if unit_last else dim
    for s in range(0, m, chunk):
        e = min(s + chunk, m)
        z = out[:, s:e]
        t = tmp[:, : e - s]
        np.multiply(neg_items[:, 0:1], x_t[0, s:e], out=z)
        for j in range(1, last):
            np.multiply(neg_items[:, j : j + 1], x_t[j, s:e], out=t)
            z += t
        if unit_last:
            z += neg_items[:, dim - 1 : dim]
        np.exp(z, out=z)
        z += 1.0
        np.reciprocal(z, out=z)
    return out


def _argmax_rows(v: np.ndarray) -> np.ndarray:
    """``v.argmax(axis=0)`` for an ``(I, m)`` array (first maximum), by row sweeps."""
    best = v[0].copy()
    idx = np.zeros(v.shape[1], np.intp)
    gt = np.empty(v.shape[1], bool)
    for i in range(1, v.shape[0]):
        np.greater(v[i], best, out=gt)
        np.copyto(idx, i, where=gt)
        np.maximum(best, v[i], out=best)
    return idx


def draw_participants(u: np.ndarray, n_agents: int) -> np.ndarray:
    """``(n, k)`` distinct agents from ``(n, k)`` uniforms: pick j is the ⌊u_j (N−j)⌋-th unused."""
    n, k = u.shape
    out = np.empty((n, k), np.int64)
    for j in range(k):
        r = (u[:, j] * (n_agents - j)).astype(np.int64)
        if j:
            prev = np.sort(out[:, :j], axis=1)
            for i in range(j):  # shift past every smaller-or-equal pick already taken
                r += r >= prev[:, i]
        out[:, j] = r
    return out


class AuctionEngine:
    """Simulate an :class:`AuctionGymWorld` with one vectorised bidder per agent.

    Args:
        world: the market.
        bidders: one :class:`VectorBidder` per agent (e.g. from
            :func:`adsim.policies.auctiongym_bidders.bidders_from_config`).
        seed: seed (or SeedSequence) of the context, participant and click streams.

    >>> from adsim.env.engine import AuctionEngine, AuctionGymWorld
    >>> from adsim.policies.auctiongym_bidders import bidders_from_config
    >>> from adsim.env.engine import SP_ORACLE
    >>> eng = AuctionEngine(AuctionGymWorld.from_config(SP_ORACLE),
    ...                     bidders_from_config(SP_ORACLE, 0), seed=0)
    >>> res = eng.run(1000)
    >>> res.records.to_arrow().num_rows, res.totals.n_rounds
    (2000, 1000)
    """

    def __init__(self, world: AuctionGymWorld, bidders: list[VectorBidder],
                 seed: int | np.random.SeedSequence = 0, max_batch: int = 262_144) -> None:
        if len(bidders) != world.n_agents:
            raise ValueError(f"need one bidder per agent ({world.n_agents}), got {len(bidders)}")
        self.world = world
        self.bidders = list(bidders)
        ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        self.ctx_rng, self.part_rng, self.click_rng = (np.random.default_rng(s) for s in ss.spawn(3))
        self.rounds_done = 0
        self.max_batch = int(max_batch)
        self.totals = AgentTotals.zeros(world.n_agents)
        self._neg_items = [np.ascontiguousarray(-world.items[a]) for a in range(world.n_agents)]
        self._values_col = world.values[:, :, None]

    def run(self, n_rounds: int, records: bool = True) -> BatchResult:
        """Simulate ``n_rounds`` rounds; per-round records only when ``records``.

        Longer runs are simulated in pieces of ``max_batch`` rounds (bounded memory without
        records); every stream is consumed in round order, so the result is the same as one
        piece (bit for bit).
        """
        n = int(n_rounds)
        if n <= self.max_batch:
            return self._run(n, records)
        parts = [self._run(min(self.max_batch, n - s), records) for s in range(0, n, self.max_batch)]
        totals = AgentTotals.zeros(self.world.n_agents)
        for p in parts:
            totals.add(p.totals)
        rows = [p.update_rows for p in parts]
        merged = None
        if rows[0] is not None:
            merged = RoundRecords(**{
                f: np.concatenate([getattr(r, f) for r in rows])  # type: ignore[union-attr]
                for f in RoundRecords.__dataclass_fields__})
        return BatchResult(merged if records else None, totals, merged)

    def _run(self, n_rounds: int, records: bool) -> BatchResult:
        w = self.world
        n, k, n_agents = int(n_rounds), w.n_participants, w.n_agents
        if n < 0:
            raise ValueError(f"n_rounds must be >= 0, got {n_rounds}")
        z = self.ctx_rng.normal(0.0, w.embedding_var, size=(n, w.embedding_size))
        x_t = np.empty((w.items.shape[2], n))  # (D, n): one context entry per row
        x_t[: w.embedding_size] = z.T
        if w.intercept:
            x_t[-1] = 1.0
        x = x_t.T  # (n, D) view
        parts = draw_participants(self.part_rng.random((n, k)), n_agents)
        shape = (n, k)
        ectr, value, bid = np.empty(shape), np.empty(shape), np.empty(shape)
        item = np.empty(shape, np.int32) if records else None
        best = np.empty(shape) if records else None
        flat = parts.ravel()
        # each agent's (round, slot) cells in round order; a radix sort on int16 keys
        order = np.argsort(flat.astype(np.int16), kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(n_agents + 1))
        ectr_f, value_f, bid_f = ectr.reshape(-1), value.reshape(-1), bid.reshape(-1)
        item_f = item.reshape(-1) if item is not None else None
        best_f = best.reshape(-1) if best is not None else None
        for a in range(n_agents):
            cells = order[bounds[a]: bounds[a + 1]]
            if cells.size == 0:
                continue
            r = cells // k
            xa = x_t[:, r]  # (D, m)
            ctr = _ctr_columns(xa, self._neg_items[a], w.intercept)  # (I, m) true CTRs (Oracle allocator)
            ev = ctr * self._values_col[a]
            j = _argmax_rows(ev)  # first best ad, as numpy.argmax
            at = j * cells.size + np.arange(cells.size)  # flat index of (j, col) in (I, m)
            c = np.take(ctr, at)
            v = np.take(w.values[a], j)
            ectr_f[cells] = c
            value_f[cells] = v
            bid_f[cells] = self.bidders[a].bid(v, c, xa.T)
            if item_f is not None and best_f is not None:
                item_f[cells] = j
                best_f[cells] = np.take(ev, at)
        rows = np.arange(n)
        if k == 2:
            win = (bid[:, 1] > bid[:, 0]).astype(np.intp)  # ties: the first participant
            second = np.minimum(bid[:, 0], bid[:, 1])
        else:
            win = bid.argmax(axis=1)
            second = np.partition(bid, k - 2, axis=1)[:, k - 2]
        fw = rows * k + win  # flat index of each round's winner cell
        price = second if w.mechanism == "second_price" else np.take(bid_f, fw)
        ctr_w = np.take(ectr_f, fw)  # Oracle: estimated CTR = true CTR
        click = self.click_rng.random(n) < ctr_w
        win_agent = np.take(flat, fw)
        v_w = np.take(value_f, fw)
        totals = AgentTotals(
            n_rounds=n, revenue=float(price.sum()), clicks=int(np.count_nonzero(click)),
            wins=np.bincount(win_agent, minlength=n_agents),
            spend=np.bincount(win_agent, price, minlength=n_agents),
            agent_clicks=np.bincount(win_agent, click, minlength=n_agents).astype(np.int64),
            gross_utility=np.bincount(win_agent, v_w * click, minlength=n_agents),
        )
        totals.net_utility = totals.gross_utility - totals.spend
        self.totals.add(totals)
        learners = any(getattr(b, "learns", False) for b in self.bidders)
        rec = None
        if records or learners:
            won = np.zeros(shape, bool)
            won.reshape(-1)[fw] = True
            outcome = np.zeros(shape, bool)
            outcome.reshape(-1)[fw] = click
            second_col = np.zeros(shape)
            second_col.reshape(-1)[fw] = second
            rec = RoundRecords(
                round=self.rounds_done + rows, agent=parts, context=x,
                item=item if item is not None else np.zeros(0, np.int32), estimated_ctr=ectr,
                value=value, bid=bid,
                best_expected_value=best if best is not None else np.zeros(0), true_ctr=ectr,
                price=np.repeat(price[:, None], k, axis=1), second_price=second_col,
                outcome=outcome, won=won,
            )
        self.rounds_done += n
        return BatchResult(rec if records else None, totals, rec)

    def agent_batches(self, rec: RoundRecords) -> list[AgentBatch | None]:
        """Each agent's rows of ``rec`` (round order), for bidder updates."""
        flat = rec.agent.ravel()
        order = np.argsort(flat.astype(np.int16), kind="stable")
        bounds = np.searchsorted(flat[order], np.arange(self.world.n_agents + 1))
        k = rec.n_participants
        out: list[AgentBatch | None] = []
        for a in range(self.world.n_agents):
            cells = order[bounds[a]: bounds[a + 1]]
            if cells.size == 0:
                out.append(None)
                continue
            r = cells // k
            out.append(AgentBatch(
                context=rec.context[r], value=rec.value.ravel()[cells],
                estimated_ctr=rec.estimated_ctr.ravel()[cells], bid=rec.bid.ravel()[cells],
                price=rec.price.ravel()[cells], second_price=rec.second_price.ravel()[cells],
                outcome=rec.outcome.ravel()[cells], won=rec.won.ravel()[cells]))
        return out

    def update_bidders(self, result: BatchResult) -> None:
        """Give every learning bidder its rows of the last batch (AuctionGym's ``agent.update``)."""
        rec = result.update_rows
        if rec is None:
            return
        for bidder, batch in zip(self.bidders, self.agent_batches(rec)):
            if getattr(bidder, "learns", False) and batch is not None:
                bidder.update(batch)

    def run_iterations(self, n_iter: int, rounds_per_iter: int,
                       records: bool = False) -> list[BatchResult]:
        """``n_iter`` batches of ``rounds_per_iter`` rounds; learning bidders update after each."""
        out = []
        for _ in range(n_iter):
            res = self.run(rounds_per_iter, records=records)
            self.update_bidders(res)
            out.append(res)
        return out

