"""Traffic over a simulated day (simpy): diurnal arrivals, decision steps, delayed conversions.

The day lasts ``hours`` (24) and is split into ``n_steps`` equal decision steps. The request rate
follows a piecewise-constant *diurnal curve* λ(t) (equal-width bins, e.g. 24 hourly rates); the
``n_requests`` of a day are split over the steps by one multinomial draw with step probabilities
``∫_step λ / ∫_day λ`` (:func:`step_shares`), which is also the *ideal pacing line*: spending the
budget in proportion to traffic.

simpy keeps the clock. :class:`DayClock` advances the simpy environment step boundary by step
boundary and runs one event per **batch** of delayed conversions (all conversions of a step that
land in the same later step travel together as arrays) — never one event per impression, so the hot path stays
vectorised. Conversions landing after the end of the day are *censored* (counted, not delivered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import simpy

__all__ = ["DayClock", "ConversionBatch", "step_shares", "step_request_counts"]


def step_shares(n_steps: int, diurnal: Sequence[float]) -> np.ndarray:
    """``(n_steps,)`` share of the day's traffic in each step (sums to 1)."""
    rates = np.asarray(diurnal, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0 or np.any(rates < 0) or rates.sum() <= 0:
        raise ValueError("diurnal must be a non-empty list of rates >= 0 with a positive sum")
    # cumulative traffic at the bin edges, interpolated at the step edges (exact for a
    # piecewise-constant rate)
    bins = np.linspace(0.0, 1.0, rates.size + 1)
    cum = np.concatenate([[0.0], np.cumsum(rates)]) / rates.sum()
    edges = np.interp(np.linspace(0.0, 1.0, n_steps + 1), bins, cum)
    return np.diff(edges)


def step_request_counts(
    n_requests: int, n_steps: int, diurnal: Sequence[float], rng: np.random.Generator
) -> np.ndarray:
    """``(n_steps,)`` requests per step: one multinomial draw over :func:`step_shares`."""
    p = step_shares(n_steps, diurnal)
    return rng.multinomial(n_requests, p / p.sum())


@dataclass
class ConversionBatch:
    """Conversions landing in one step: campaign index and value of each."""

    step: int
    campaign: np.ndarray
    value: np.ndarray


@dataclass
class DayClock:
    """simpy clock of one day: step boundaries and batched delayed conversions.

    Usage: ``clock.schedule_conversions(...)`` while handling step k, then
    ``clock.advance()`` moves to the end of step k and returns the conversion batches that
    landed during it.
    """

    n_steps: int
    hours: float = 24.0
    env: simpy.Environment = field(init=False)
    step: int = field(init=False, default=0)
    censored: int = field(init=False, default=0)
    _landed: list[ConversionBatch] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.env = simpy.Environment()

    @property
    def dt(self) -> float:
        return self.hours / self.n_steps

    @property
    def now(self) -> float:
        """Current time in hours."""
        return float(self.env.now)

    @property
    def done(self) -> bool:
        return self.step >= self.n_steps

    def _deliver(self, delay: float, batch: ConversionBatch):  # type: ignore[no-untyped-def]
        yield self.env.timeout(delay)
        self._landed.append(batch)

    def schedule_conversions(
        self, times: np.ndarray, campaign: np.ndarray, value: np.ndarray
    ) -> None:
        """Schedule conversions happening at absolute ``times`` (hours), one event per landing step.

        Conversions at or after the end of the day are censored.
        """
        times = np.asarray(times, dtype=np.float64)
        if times.size == 0:
            return
        land = np.floor(times / self.dt).astype(np.int64)
        land = np.maximum(land, self.step)  # cannot land before the current step
        late = land >= self.n_steps
        self.censored += int(np.count_nonzero(late))
        keep = ~late
        land, campaign, value = land[keep], np.asarray(campaign)[keep], np.asarray(value)[keep]
        if land.size == 0:
            return
        order = np.argsort(land, kind="stable")
        land, campaign, value = land[order], campaign[order], value[order]
        steps, starts = np.unique(land, return_index=True)
        bounds = np.append(starts, land.size)
        for s, a, b in zip(steps.tolist(), bounds[:-1].tolist(), bounds[1:].tolist()):
            # lands at the end of step s (it is observed with that step's outcome)
            delay = max((s + 1) * self.dt - self.now - 1e-9, 0.0)
            self.env.process(self._deliver(delay, ConversionBatch(s, campaign[a:b], value[a:b])))

    def advance(self) -> list[ConversionBatch]:
        """Run the clock to the end of the current step; return conversions landed in it."""
        if self.done:
            raise RuntimeError("the day is over; reset the clock")
        target = (self.step + 1) * self.dt
        self.env.run(until=target)
        self.step += 1
        landed, self._landed = self._landed, []
        return landed
