"""Per-round auction records, columnar: one row per (round, participant), as AuctionGym logs them.

AuctionGym (Jeunen, Murphy & Allison 2022, "Off-Policy Learning-to-Bid with AuctionGym", KDD
workshop; ``src/Agent.py`` / ``src/Impression.py``) appends one ``ImpressionOpportunity`` per
participant per round: context, item, estimated CTR, value, bid, best expected value, true CTR,
price, second price, outcome (click) and won. :class:`RoundRecords` holds the same fields for a
whole batch as ``(n_rounds, n_participants)`` numpy arrays and turns them into one Arrow table
(rows round-major, participants in draw order) without copying the numeric columns;
:meth:`RoundRecords.write_parquet` writes it atomically.

Field meanings follow AuctionGym's: ``price`` is the auction's price on every participant's row
(AuctionGym's ``set_price`` for losers); ``second_price`` and ``outcome`` are non-zero only on the
winner's row.

:class:`AgentTotals` are the per-agent running sums AuctionGym keeps on ``Agent`` (net utility
``Σ won·(value·outcome − price)``, gross utility ``Σ won·value·outcome``) plus wins, spend and
clicks, and the auction's revenue.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["RoundRecords", "AgentTotals", "RECORD_FIELDS"]

#: the per-participant fields, in AuctionGym's ``ImpressionOpportunity`` order (context aside)
RECORD_FIELDS = (
    "item", "estimated_ctr", "value", "bid", "best_expected_value", "true_ctr", "price",
    "second_price", "outcome", "won",
)


@dataclass
class RoundRecords:
    """One batch of rounds; arrays are ``(n_rounds, n_participants)`` except ``round`` and
    ``context``.

    Attributes:
        round: ``(n_rounds,)`` global index of each round (counted over the engine's life).
        agent: the participant's agent index.
        context: ``(n_rounds, dim)`` context the participants saw (shared by a round's rows).
        item … won: see :data:`RECORD_FIELDS` and the module docstring.
    """

    round: np.ndarray
    agent: np.ndarray
    context: np.ndarray
    item: np.ndarray
    estimated_ctr: np.ndarray
    value: np.ndarray
    bid: np.ndarray
    best_expected_value: np.ndarray
    true_ctr: np.ndarray
    price: np.ndarray
    second_price: np.ndarray
    outcome: np.ndarray
    won: np.ndarray

    @property
    def n_rounds(self) -> int:
        return int(self.agent.shape[0])

    @property
    def n_participants(self) -> int:
        return int(self.agent.shape[1])

    def to_arrow(self):  # -> pyarrow.Table
        """One row per (round, participant), round-major; context as columns ``x_0 … x_{d-1}``."""
        import pyarrow as pa

        k = self.n_participants
        cols: dict[str, np.ndarray] = {
            "round": np.repeat(self.round, k) if self.round.ndim == 1 else self.round.ravel(),
            "agent": self.agent.ravel(),
        }
        for j in range(self.context.shape[1]):
            cols[f"x_{j}"] = np.repeat(self.context[:, j], k)
        for name in RECORD_FIELDS:
            cols[name] = getattr(self, name).ravel()
        return pa.table({name: _arrow(v) for name, v in cols.items()})

    def write_parquet(self, path: str | os.PathLike[str]) -> None:
        """Write :meth:`to_arrow` to ``path`` atomically (temp file + rename)."""
        import pyarrow.parquet as pq

        from adsim._io import write_with

        table = self.to_arrow()
        write_with(path, lambda tmp: pq.write_table(table, tmp))


def _arrow(values: np.ndarray):  # -> pyarrow.Array
    """A numpy column as an Arrow array; numeric columns share the numpy buffer (no copy)."""
    import pyarrow as pa

    if values.dtype == bool:
        return pa.array(values)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), values.shape[0],
                                 [None, pa.py_buffer(values)])


@dataclass
class AgentTotals:
    """Running totals of a simulation; per-agent arrays have length ``n_agents``."""

    n_rounds: int = 0
    revenue: float = 0.0
    clicks: int = 0
    wins: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    spend: np.ndarray = field(default_factory=lambda: np.zeros(0))
    agent_clicks: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    gross_utility: np.ndarray = field(default_factory=lambda: np.zeros(0))
    net_utility: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def zeros(cls, n_agents: int) -> AgentTotals:
        return cls(0, 0.0, 0, np.zeros(n_agents, np.int64), np.zeros(n_agents),
                   np.zeros(n_agents, np.int64), np.zeros(n_agents), np.zeros(n_agents))

    def add(self, other: AgentTotals) -> None:
        """Accumulate ``other`` into these totals (in place)."""
        self.n_rounds += other.n_rounds
        self.revenue += other.revenue
        self.clicks += other.clicks
        self.wins += other.wins
        self.spend += other.spend
        self.agent_clicks += other.agent_clicks
        self.gross_utility += other.gross_utility
        self.net_utility += other.net_utility
