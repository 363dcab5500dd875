"""Memory estimates checked before anything is allocated.

The schema's per-field bounds keep each number sane, but products of them are not: 10M users ×
100k ads, or a 1M-value vocabulary (one-hot design width) times a 20k-row training log, would
allocate tens of GiB and fail late (or take the machine down). :func:`scenario_memory` lists
the large arrays a run of a scenario allocates, each with the field that drives it, and
:func:`check_memory` refuses a scenario whose estimate exceeds the ceiling
``$ADSIM_MAX_MEMORY_GB`` (default: half of the machine's RAM), naming the field, the estimate,
the ceiling and how to raise it.

The estimates are deliberately on the high side (float64 everywhere, a copy per concatenation);
they are upper bounds on the large arrays, not a model of the allocator.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from adsim.config.base import FieldError, short_repr
from adsim.errors import ConfigError

#: :class:`adsim.config.scenario.Scenario` — not imported: that module imports this one (the
#: import test forbids cycles, type-only ones too)
Scenario = Any

__all__ = ["MemoryTerm", "memory_ceiling_bytes", "scenario_memory", "check_memory", "format_bytes"]

_F8 = 8  # bytes of a float64 / int64
_GIB = 1 << 30


@dataclass(frozen=True)
class MemoryTerm:
    """One large allocation: ``bytes`` driven by the field at ``loc`` (a path in the file)."""

    loc: tuple[Any, ...]
    what: str
    bytes: int


def _physical_ram() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        return 8 * _GIB


def memory_ceiling_bytes() -> int:
    """``$ADSIM_MAX_MEMORY_GB`` in bytes (a positive number of GiB), else half the RAM."""
    raw = os.environ.get("ADSIM_MAX_MEMORY_GB")
    if raw is None or raw.strip() == "":
        return max(_physical_ram() // 2, _GIB)
    try:
        gb = float(raw)
    except ValueError:
        gb = float("nan")
    if not (0.0 < gb < 1e6):
        raise ConfigError(
            f"ADSIM_MAX_MEMORY_GB={short_repr(raw)}: must be a positive number of GiB (e.g. 16)"
        )
    return int(gb * _GIB)


def format_bytes(n: float) -> str:
    """``1536`` → ``'1.5 KiB'``; large values stay readable (``'7.5e+04 TiB'``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:,.1f} TiB" if n < 1e6 else f"{n:.2g} TiB"


def _loc_text(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def check_memory(terms: list[MemoryTerm], ceiling: int | None = None) -> None:
    """Raise :class:`FieldError` (located at the largest term's field) if the sum of ``terms``
    exceeds ``ceiling`` (default :func:`memory_ceiling_bytes`)."""
    limit = memory_ceiling_bytes() if ceiling is None else ceiling
    total = sum(t.bytes for t in terms)
    if total <= limit:
        return
    sized = [t for t in terms if t.loc] or terms  # the largest term driven by a field
    top = max(sized, key=lambda t: t.bytes)
    raise FieldError(
        top.loc,
        f"the run would allocate about {format_bytes(total)} (largest: {top.what},"
        f" {format_bytes(top.bytes)}), above the memory ceiling of {format_bytes(limit)};"
        f" lower {_loc_text(top.loc)} (or the sizes it multiplies), or raise the ceiling with"
        " ADSIM_MAX_MEMORY_GB=<GiB>",
    )


# ------------------------------------------------------------------------------------ scenarios
_LEARNING_TYPES = {"linucb", "lin_thompson"}  # (K, d, d) ridge matrices


def _world_terms(s: Scenario) -> tuple[list[MemoryTerm], int, int]:
    """Terms of the world itself; returns ``(terms, design width d, context width)``."""
    w = s.world
    k = w.n_ads
    vocab = sum(f.vocab_size for f in w.sparse_fields)
    n_sparse = len(w.sparse_fields)
    d = w.n_dense + vocab
    terms = [
        MemoryTerm(("world", "n_users"), "user population", _F8 * w.n_users * (w.n_dense + n_sparse + 2)),
        # the truth's field × value × ad tables, and a noisy copy per noisy_truth policy
        MemoryTerm(("world", "sparse_fields"), "field × value × ad effect tables", _F8 * vocab * k * 3),
        MemoryTerm(("world", "n_ads"), "ad embeddings", _F8 * k * (w.n_dense + 2) * 3),
    ]
    if w.truth.type == "trained":
        cache = w.truth.cache
        pairs = w.n_users * k
        if cache == "always" or (cache == "auto" and pairs <= 20_000_000):
            terms.append(MemoryTerm(("world", "n_users"), "cached users × ads probabilities", _F8 * pairs * 2))
        terms.append(MemoryTerm(("world", "truth", "batch_size"), "inference batch", 4 * w.truth.batch_size * 256))
    return terms, d, w.n_dense + n_sparse + 2


def _bandit_terms(s: Scenario, d: int, ctx: int) -> list[MemoryTerm]:
    ev = s.evaluation
    k = s.world.n_ads
    batch = 100_000  # World.collect's batch
    terms = [
        # a log keeps its contexts, action, reward, pscore and the true q(x, ·) row (K floats);
        # concatenating the batches copies it once
        MemoryTerm(("evaluation", "n_rounds"), "evaluation log (contexts and true q per ad)",
                   _F8 * ev.n_rounds * (k + ctx + 4) * 3),
        MemoryTerm(("evaluation", "n_train_rounds"), "training log (contexts and true q per ad)",
                   _F8 * ev.n_train_rounds * (k + ctx + 4) * 3),
        # each candidate's action_dist on the whole evaluation log, the reward model q̂ and
        # the estimators' per-round weights
        MemoryTerm(("evaluation", "n_rounds"), "action probabilities and q̂ on the evaluation log",
                   _F8 * ev.n_rounds * k * 4),
        MemoryTerm(("world", "n_ads"), "per-batch probabilities while logging",
                   _F8 * min(batch, max(ev.n_rounds, ev.n_train_rounds)) * k * 4),
        MemoryTerm(("world", "n_ads"), "exact values: a chunk of users × ads",
                   _F8 * min(65_536, s.world.n_users) * k * 4),
    ]
    if ev.n_online_rounds:
        terms.append(MemoryTerm(("evaluation", "n_online_rounds"), "on-policy simulation log",
                                _F8 * ev.n_online_rounds * (k + ctx + 4) * 3))
    # fitted models, learning candidates and the fitted reward model (DM/DR family) work on the
    # one-hot design matrix (n, d): fitted on the training log, applied to the evaluation log
    learners = _LEARNING_TYPES | {"thompson", "ensemble_thompson", "online_epsilon_greedy"}
    uses_design = any(
        c.type in learners or getattr(c, "model", None) == "fitted" for c in s.candidates
    ) or bool(set(ev.estimators) - {"ips", "snips"})
    if uses_design:
        terms.append(MemoryTerm(
            ("world", "sparse_fields"),
            "one-hot design matrices of the training and evaluation logs"
            " (rounds × (n_dense + Σ vocab_size))",
            _F8 * (ev.n_train_rounds + ev.n_rounds) * d * 2,
        ))
    n_square = sum(1 for c in s.candidates if c.type in _LEARNING_TYPES | {"thompson"})
    if n_square:
        terms.append(MemoryTerm(("world", "sparse_fields"),
                                "per-ad (d × d) matrices of LinUCB / Thompson candidates (d = n_dense + Σ vocab_size)",
                                _F8 * n_square * k * d * d * 5))
    for i, c in enumerate(s.candidates):
        if c.type == "thompson":
            terms.append(MemoryTerm(("candidates", i, "n_samples"),
                                    "Thompson posterior draws and per-chunk scores",
                                    _F8 * c.n_samples * k * (d + 2 * 4096)))
    return terms


def _auction_terms(s: Scenario, d: int) -> list[MemoryTerm]:
    a = s.auction
    assert a is not None
    t = a.traffic
    k = s.world.n_ads
    n_camp = len(a.campaigns)
    n_market = a.market.n_competitors if a.market.type == "lognormal" else a.market.n_bidders
    curve = t.diurnal
    peak_share = max(curve) / sum(curve)  # share of the day's requests in the busiest bin
    per_step = min(t.n_requests, int(t.n_requests * peak_share * len(curve) / t.n_steps) + 1)
    days = 1 if s.bidding is None else 1 + len(s.bidding.candidates)  # one day alive at a time
    terms = [
        MemoryTerm(("auction", "traffic", "n_requests"),
                   "one decision step's requests × (ads + campaigns + competitors) arrays",
                   _F8 * per_step * (k + n_camp + n_market + s.world.n_dense + 8) * 6),
        MemoryTerm(("auction", "traffic", "n_requests"),
                   "the day's hindsight values and costs per campaign and slot",
                   _F8 * t.n_requests * n_camp * a.n_slots * 8 * min(days, 2)),
        MemoryTerm(("auction", "traffic", "n_steps"), "per-step records of every campaign",
                   2_000 * t.n_steps * n_camp * days),
    ]
    if s.bidding is not None and any(c.type == "ts_lagrangian" for c in s.bidding.candidates):
        terms.append(MemoryTerm(("world", "sparse_fields"),
                                "Thompson-sampling CTR posterior (d × d per campaign)",
                                _F8 * (d + 1) ** 2 * n_camp * 3))
    return terms


def scenario_memory(s: Scenario) -> list[MemoryTerm]:
    """The large allocations of ``adsim run`` on scenario ``s`` (upper-bound estimates)."""
    terms, d, ctx = _world_terms(s)
    # modules imported during the run (scipy.optimize, matplotlib …), plots, small tables
    terms.append(MemoryTerm((), "libraries loaded during the run, plots, tables", 64 << 20))
    if s.auction is not None:
        terms += _auction_terms(s, d)
    else:
        terms += _bandit_terms(s, d, ctx)
    return terms
