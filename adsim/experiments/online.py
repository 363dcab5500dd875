"""Online bandit experiments: a learning policy acts, observes (possibly delayed) feedback, learns.

:func:`run_online` plays ``n_rounds`` requests of a world in batches: the policy's action
distribution for the batch, a sampled action per request, clicks drawn from the truth, and the
feedback queued in :class:`~adsim.policies.bandits.DelayedFeedback` to arrive ``delay`` batches
later. It records the **cumulative (pseudo-)regret** against the per-context best ad,

.. math::  R(T) = \\sum_{t \\le T} \\Big[\\max_a q(x_t, a) − \\sum_a π_t(a \\mid x_t) q(x_t, a)\\Big],

using the exact q from the simulator (no sampling noise in the regret itself), and the realised
reward. :func:`loglog_slope` fits R(T) ∝ T^s on a log–log scale: s < 1 is sublinear regret
(s ≈ 0.5 for the √T rates of LinUCB / Thompson sampling; Li et al. 2010, Agrawal & Goyal 2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adsim.env.world import World
from adsim.policies.bandits import DelayedFeedback
from adsim.policies.base import BanditPolicy

__all__ = ["OnlineTrace", "run_online", "loglog_slope"]


@dataclass
class OnlineTrace:
    """Cumulative regret and reward after each batch."""

    rounds: np.ndarray
    cum_regret: np.ndarray
    cum_reward: np.ndarray

    @property
    def online_value(self) -> float:
        """Mean realised reward per request."""
        return float(self.cum_reward[-1] / self.rounds[-1])


def run_online(
    world: World,
    policy: BanditPolicy,
    n_rounds: int,
    rng: np.random.Generator,
    batch_size: int = 500,
    delay: int = 0,
) -> OnlineTrace:
    """Play ``policy`` online for ``n_rounds`` requests; feedback arrives ``delay`` batches late."""
    queue = DelayedFeedback(policy)
    n_batches = -(-n_rounds // batch_size)
    rounds = np.zeros(n_batches, np.int64)
    regret = np.zeros(n_batches)
    reward = np.zeros(n_batches)
    done = 0
    for b in range(n_batches):
        n = min(batch_size, n_rounds - done)
        ctx = world.sample_contexts(n, rng)
        dist = policy.action_dist(ctx)
        actions = policy.sample_from(dist, rng)
        r, q = world.simulate(ctx, actions, rng)
        regret[b] = float((q.max(axis=1) - np.einsum("nk,nk->n", dist, q)).sum())
        reward[b] = float(r.sum())
        done += n
        rounds[b] = done
        queue.push(ctx, actions, r, arrival=b + delay)
        queue.release(b)
    return OnlineTrace(rounds, np.cumsum(regret), np.cumsum(reward))


def loglog_slope(t: np.ndarray, regret: np.ndarray, start: float = 0.1) -> float:
    """Least-squares slope of log R against log t over ``t >= start · t_max``."""
    t = np.asarray(t, dtype=np.float64)
    r = np.asarray(regret, dtype=np.float64)
    keep = (t >= start * t.max()) & (r > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[keep]), np.log(r[keep]), 1)[0])
