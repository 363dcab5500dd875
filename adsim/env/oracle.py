"""Exact policy values.

Requests draw users from a finite population with weights :math:`w_u`, so the value of a policy
π is the finite sum

.. math::  V(\\pi) = \\sum_u w_u \\sum_a \\pi(a \\mid u) \\, q(u, a)

with :math:`q(u, a)` the world's true expected reward — no Monte Carlo.

For budgets, :func:`hindsight_optimal` gives the best any bidding policy could have achieved on
the auctions that actually happened (a fractional knapsack / LP), so a policy's outcome can be
scored as a percentage of the possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from adsim.env.types import BanditPolicy
    from adsim.env.world import World

__all__ = ["policy_value", "conditional_value", "hindsight_optimal", "HindsightResult"]


def conditional_value(action_dist: np.ndarray, q: np.ndarray) -> float:
    """Mean of Σ_a π(a|x_i) q(x_i, a) over the given rows (value conditional on those contexts)."""
    return float(np.einsum("ik,ik->i", action_dist, q).mean())


def policy_value(world: World, policy: BanditPolicy, chunk: int = 65_536) -> float:
    """Exact value V(π) of ``policy`` in ``world`` (weighted sum over the whole population)."""
    users = world.population.users
    w = world.population.weights
    total = 0.0
    for start in range(0, len(users), chunk):
        idx = np.arange(start, min(start + chunk, len(users)))
        ctx = users.take(idx)
        per_user = np.einsum("ik,ik->i", policy.action_dist(ctx), world.expected_reward(ctx))
        total += float(per_user @ w[idx])
    return total


# --------------------------------------------------------------------- hindsight-optimal budget
@dataclass(frozen=True)
class HindsightResult:
    """The best a budgeted campaign could have done over the realised auctions.

    Attributes:
        value: optimal expected value (the LP / fractional-knapsack optimum).
        cost: its spend (``<= budget``).
        x: ``(n, S)`` optimal fractions of each (request, slot) option.
        dual: the budget's shadow price λ* (value per unit of extra budget).
        method: ``"knapsack"``, ``"linprog"`` or ``"dual"``.
    """

    value: float
    cost: float
    x: np.ndarray
    dual: float
    method: str


def _knapsack(values: np.ndarray, costs: np.ndarray, budget: float) -> HindsightResult:
    """Fractional knapsack (Dantzig 1957): take options by value/cost, the last one in part."""
    v, c = values.ravel(), costs.ravel()
    x = np.zeros_like(v)
    ok = (v > 0) & np.isfinite(c)
    free = ok & (c <= 0)
    x[free] = 1.0
    pos = np.flatnonzero(ok & (c > 0))
    order = pos[np.argsort(-(v[pos] / c[pos]), kind="stable")]
    cum = np.cumsum(c[order])
    n_full = int(np.searchsorted(cum, budget, side="right"))
    x[order[:n_full]] = 1.0
    dual = 0.0
    if n_full < order.size:
        left = budget - (cum[n_full - 1] if n_full else 0.0)
        j = order[n_full]
        x[j] = left / c[j]
        dual = float(v[j] / c[j])
    x = x.reshape(values.shape)
    return HindsightResult(
        float((x * np.where(ok.reshape(values.shape), values, 0)).sum()),
        float((x * np.where(ok.reshape(values.shape), costs, 0)).sum()), x, dual, "knapsack",
    )


def _mckp_dual(values: np.ndarray, costs: np.ndarray, budget: float) -> HindsightResult:
    """LP relaxation of the multiple-choice knapsack by its dual:
    ``min_{λ>=0} λB + Σ_i max(0, max_k v_ik − λ c_ik)`` (convex, piecewise linear in λ), solved by
    bisection on λ to relative precision 1e-10, then primal recovery at λ* mixing the two
    greedy solutions just below and above λ* (exact at the breakpoint)."""
    v = np.where(np.isfinite(costs), values, -np.inf)
    c = np.where(np.isfinite(costs), costs, 0.0)

    def greedy(lam: float) -> tuple[np.ndarray, float, float]:
        red = v - lam * c
        k = red.argmax(axis=1)
        rows = np.arange(v.shape[0])
        take = red[rows, k] > 0
        return np.where(take, k, -1), float(c[rows, k][take].sum()), float(v[rows, k][take].sum())

    pick0, cost0, val0 = greedy(0.0)
    rows = np.arange(v.shape[0])
    if cost0 <= budget:
        x = np.zeros_like(values, dtype=np.float64)
        x[rows[pick0 >= 0], pick0[pick0 >= 0]] = 1.0
        return HindsightResult(val0, cost0, x, 0.0, "dual")
    lo, hi = 0.0, 1.0
    while greedy(hi)[1] > budget:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if greedy(mid)[1] > budget:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-10 * hi:
            break
    p_lo, c_lo, v_lo = greedy(lo)
    p_hi, c_hi, v_hi = greedy(hi)
    a = 1.0 if c_lo == c_hi else (budget - c_hi) / (c_lo - c_hi)  # weight on the λ_lo solution
    x = np.zeros_like(values, dtype=np.float64)
    x[rows[p_hi >= 0], p_hi[p_hi >= 0]] += 1.0 - a
    x[rows[p_lo >= 0], p_lo[p_lo >= 0]] += a
    return HindsightResult(
        float(a * v_lo + (1 - a) * v_hi), float(a * c_lo + (1 - a) * c_hi), x, float(hi), "dual"
    )


def _mckp_linprog(values: np.ndarray, costs: np.ndarray, budget: float) -> HindsightResult:
    """The same LP with scipy's HiGHS: max Σ v x s.t. Σ c x <= B, Σ_k x_ik <= 1, 0 <= x <= 1."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, vstack

    n, s = values.shape
    ok = np.isfinite(costs) & (values > 0)
    v = np.where(ok, values, 0.0).ravel()
    c = np.where(ok, costs, 0.0).ravel()
    rows = np.repeat(np.arange(n), s)
    one_per_request = csr_matrix((np.ones(n * s), (rows, np.arange(n * s))), shape=(n, n * s))
    a_ub = vstack([csr_matrix(c[None, :]), one_per_request]).tocsr()
    b_ub = np.concatenate([[budget], np.ones(n)])
    bounds = np.stack([np.zeros(n * s), ok.ravel().astype(float)], axis=1)
    res = linprog(-v, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status != 0:
        raise RuntimeError(f"linprog failed: {res.message}")
    x = res.x.reshape(n, s)
    dual = float(-res.ineqlin.marginals[0]) if res.ineqlin is not None else float("nan")
    return HindsightResult(float(v @ res.x), float(c @ res.x), x, dual, "linprog")


def hindsight_optimal(
    values: np.ndarray, costs: np.ndarray, budget: float, method: str = "auto"
) -> HindsightResult:
    """Hindsight-optimal spend of a budget over realised auctions (an upper bound for any policy).

    Each request ``i`` offers options ``k`` (slots) with expected value ``v_ik`` and expected cost
    ``c_ik`` (``inf`` = unavailable), holding everyone else's bids fixed. The LP

    .. math::  \\max_x \\sum_{ik} v_{ik} x_{ik} \\quad\\text{s.t.}\\quad
               \\sum_{ik} c_{ik} x_{ik} \\le B,\\ \\sum_k x_{ik} \\le 1,\\ 0 \\le x \\le 1

    is a fractional knapsack for one slot (solved exactly by sorting on v/c) and the LP
    relaxation of a multiple-choice knapsack for several (Sinha & Zoltners 1979), solved with
    scipy's HiGHS ``linprog`` up to 200k options and by its exact Lagrangian dual beyond.

    Args:
        values: ``(n,)`` or ``(n, S)`` expected values.
        costs: same shape, expected costs.
        budget: the budget B (``inf``: take every option with positive value).
        method: ``auto`` | ``knapsack`` (one slot) | ``linprog`` | ``dual``.
    """
    values = np.asarray(values, dtype=np.float64)
    costs = np.asarray(costs, dtype=np.float64)
    if values.ndim == 1:
        values, costs = values[:, None], costs[:, None]
    if values.shape != costs.shape:
        raise ValueError(f"values {values.shape} and costs {costs.shape} must have the same shape")
    if np.any(costs < 0):
        raise ValueError("costs must be >= 0")
    if budget < 0:
        raise ValueError("budget must be >= 0")
    if method == "auto":
        method = "knapsack" if values.shape[1] == 1 else (
            "linprog" if values.size <= 200_000 else "dual"
        )
    if not np.isfinite(budget):
        method = "dual"
    if method == "knapsack":
        if values.shape[1] != 1:
            raise ValueError("method 'knapsack' needs one slot; use linprog or dual")
        return _knapsack(values, costs, budget)
    if method == "linprog":
        return _mckp_linprog(values, costs, budget)
    if method == "dual":
        return _mckp_dual(values, costs, budget)
    raise ValueError(f"unknown method {method!r}")
