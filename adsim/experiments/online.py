"""Online bandit experiments, the short form: a learning policy acts, observes, learns.

:func:`run_online` plays ``n_rounds`` requests of a world in batches with a generator, and
returns the **cumulative expected (pseudo-)regret** of the policy's action distributions,

.. math::  \\bar R(T) = \\sum_{t \\le T} \\Big[\\max_a q(x_t, a) − \\sum_a π_t(a \\mid x_t) q(x_t, a)\\Big],

with the exact q of the simulator, and the realised reward. It is a thin front of
:func:`adsim.experiments.regret.play` (the engine behind ``learn: online`` scenarios, which also
records the regret of the actions played and the learner's own log).

:func:`loglog_slope` fits R(T) ∝ T^s on a log–log scale over ``t >= start · t_max`` using every
recorded point (:func:`adsim.experiments.regret.loglog_slope` weighs log-spaced points evenly
over the last decades instead): s < 1 is sublinear regret (s ≈ 0.5 for the √T rates of LinUCB /
Thompson sampling; Li et al. 2010, Agrawal & Goyal 2013).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adsim.env.world import World
from adsim.experiments.regret import play
from adsim.policies.base import BanditPolicy

__all__ = ["OnlineTrace", "run_online", "loglog_slope"]


@dataclass
class OnlineTrace:
    """Cumulative expected regret and realised reward at the recorded rounds."""

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
    """Play ``policy`` online for ``n_rounds`` requests; feedback arrives ``delay`` batches late.

    The traffic seed is drawn from ``rng`` (one draw), so the same ``rng`` state gives the same
    users and clicks to every policy.
    """
    seed = int(rng.integers(2**63 - 1))
    tr = play(world, policy, n_rounds, seed, batch_size=batch_size, delay=delay)
    return OnlineTrace(tr.rounds, tr.cum_expected_regret, tr.cum_reward)


def loglog_slope(t: np.ndarray, regret: np.ndarray, start: float = 0.1) -> float:
    """Least-squares slope of log R against log t over ``t >= start · t_max``."""
    t = np.asarray(t, dtype=np.float64)
    r = np.asarray(regret, dtype=np.float64)
    keep = (t >= start * t.max()) & (r > 0)
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(t[keep]), np.log(r[keep]), 1)[0])
