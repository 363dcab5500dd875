"""Exact policy values.

Requests draw users from a finite population with weights :math:`w_u`, so the value of a policy
π is the finite sum

.. math::  V(\\pi) = \\sum_u w_u \\sum_a \\pi(a \\mid u) \\, q(u, a)

with :math:`q(u, a)` the world's true expected reward — no Monte Carlo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from adsim.env.world import World
    from adsim.policies.base import BanditPolicy

__all__ = ["policy_value", "conditional_value"]


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
