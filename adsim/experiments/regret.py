"""Bandits that learn inside a scenario, scored by cumulative regret against the exact oracle.

A candidate declared ``learn: online`` starts from its prior and plays ``T`` requests of the
scenario's traffic in batches of ``B``: for each batch it answers with its action distribution
π_t(·|x) (one call for the whole batch), an action a_t is sampled from it, clicks are drawn from
the world's truth, and the feedback reaches ``policy.update(contexts, actions, rewards)`` after
the batch (``delay`` batches later with delayed feedback). Every round is scored against the
exact per-round oracle, with q(x, a) the world's expected reward (no sampling noise):

.. math::

    R(T) = \\sum_{t \\le T} \\big[\\max_a q(x_t, a) − q(x_t, a_t)\\big]
    \\qquad\\text{(pseudo-regret of the actions played)}

    \\bar R(T) = \\sum_{t \\le T} \\big[\\max_a q(x_t, a) − \\textstyle\\sum_a π_t(a \\mid x_t)
    q(x_t, a)\\big] \\qquad\\text{(expected regret of the learner's action distribution)}

(Lattimore & Szepesvári 2020, *Bandit Algorithms*, §4.5 and §19.) R̄ is R without the noise of
sampling a_t, E[R(T)] = E[R̄(T)]. The growth of R is summarised by its log–log slope s in
R(T) ∝ T^s, fitted by least squares on log R over log-spaced rounds of the last
``decades`` decades (:func:`loglog_slope`): s ≈ 1 is linear regret (a fixed ε of exploration, or a
context-free learner in a contextual world), s ≈ 0.5 or less is the √T (or log T) rate of LinUCB
and Thompson sampling (Li et al. 2010; Agrawal & Goyal 2013).

Each learner's decisions are also kept as a :class:`~adsim.env.logs.BanditLog` whose ``pscore``
is the learner's own probability of the action it took at decision time (see
:mod:`adsim.policies.bandits` for how each policy's probability is computed), so the log can be
evaluated off-policy with ``adsim ope``.

Seeds: run ``i`` of every learner uses the traffic (users and click noise) of seed ``i`` — the
same users and click draws for every learner (common random numbers) — and its own policy seed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from adsim.env.features import Contexts
from adsim.env.logs import BanditLog
from adsim.env.oracle import policy_value
from adsim.env.world import World
from adsim.policies.bandits import DelayedFeedback
from adsim.policies.base import BanditPolicy

__all__ = [
    "LearnerTrace",
    "checkpoints",
    "play",
    "loglog_slope",
    "oracle_value",
    "run_learners",
    "summarise_learners",
    "regret_curves",
    "band_curves",
    "format_regret_table",
    "log_filename",
]


def checkpoints(n_rounds: int, n_log: int = 120, n_lin: int = 100) -> np.ndarray:
    """Rounds (1-based counts) at which cumulative sums are recorded: ``n_log`` log-spaced and
    ``n_lin`` evenly spaced rounds up to ``n_rounds`` (always including ``n_rounds``)."""
    t = np.concatenate([
        np.geomspace(1, n_rounds, n_log), np.linspace(n_rounds / n_lin, n_rounds, n_lin),
    ])
    return np.unique(np.clip(np.round(t).astype(np.int64), 1, n_rounds))


@dataclass
class LearnerTrace:
    """One learner's run: cumulative sums at ``rounds`` (see the module docstring).

    Attributes:
        rounds: ``(C,)`` round counts t at which the sums are taken.
        cum_regret: Σ_{s≤t} max_a q(x_s,a) − q(x_s,a_s).
        cum_expected_regret: Σ_{s≤t} max_a q(x_s,a) − Σ_a π_s(a|x_s) q(x_s,a).
        cum_reward: Σ realised reward.
        cum_expected_reward: Σ q(x_s, a_s).
        cum_oracle_reward: Σ max_a q(x_s, a).
        policy: the learner after its last update.
        log: its decisions with its own propensities (when asked for).
    """

    rounds: np.ndarray
    cum_regret: np.ndarray
    cum_expected_regret: np.ndarray
    cum_reward: np.ndarray
    cum_expected_reward: np.ndarray
    cum_oracle_reward: np.ndarray
    policy: BanditPolicy
    log: BanditLog | None = None

    @property
    def n_rounds(self) -> int:
        return int(self.rounds[-1])

    def slope(self, decades: float = 2.0) -> float:
        return loglog_slope(self.rounds, self.cum_regret, decades)


def _streams(seed: int | Sequence[int] | np.random.SeedSequence) -> list[np.random.Generator]:
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return [np.random.default_rng(s) for s in ss.spawn(3)]


def play(
    world: World,
    policy: BanditPolicy,
    n_rounds: int,
    seed: int | Sequence[int] | np.random.SeedSequence,
    batch_size: int = 500,
    delay: int = 0,
    keep_log: bool = False,
    on_batch: Callable[[int], None] | None = None,
) -> LearnerTrace:
    """Let ``policy`` learn online for ``n_rounds`` requests of ``world`` (module docstring).

    ``seed`` fixes the traffic: users, action draws and click draws come from three independent
    streams, so two learners with the same seed and batch size meet the same users and the same
    click noise. The hot path is batched: one ``action_dist`` and one ``update`` per batch.
    """
    if n_rounds < 1 or batch_size < 1 or delay < 0:
        raise ValueError(f"need n_rounds, batch_size >= 1 and delay >= 0, got {n_rounds},"
                         f" {batch_size}, {delay}")
    rng_ctx, rng_act, rng_click = _streams(seed)
    marks = checkpoints(n_rounds)
    sums = np.zeros((5, marks.size))
    totals = np.zeros(5)
    queue = DelayedFeedback(policy)
    parts: list[tuple[Contexts, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    done, b = 0, 0
    while done < n_rounds:
        n = min(batch_size, n_rounds - done)
        ctx = world.sample_contexts(n, rng_ctx)
        dist = policy.action_dist(ctx)
        actions = policy.sample_from(dist, rng_act)
        reward, q = world.simulate(ctx, actions, rng_click)
        rows = np.arange(n)
        best, q_a = q.max(axis=1), q[rows, actions]
        per_round = np.stack([
            best - q_a, best - np.einsum("nk,nk->n", dist, q), reward, q_a, best,
        ])  # (5, n)
        cum = totals[:, None] + np.cumsum(per_round, axis=1)
        inside = (marks > done) & (marks <= done + n)
        sums[:, inside] = cum[:, marks[inside] - done - 1]
        totals = cum[:, -1]
        if keep_log:
            pscore = np.minimum(dist[rows, actions], 1.0)  # float round-off above 1
            parts.append((ctx, actions, reward, pscore, q))
        queue.push(ctx, actions, reward, arrival=b + delay)
        queue.release(b)
        done += n
        b += 1
        if on_batch is not None:
            on_batch(n)
    log = _concat_log(world, parts) if keep_log else None
    return LearnerTrace(marks, *sums, policy=policy, log=log)


def _concat_log(world: World, parts: list[tuple]) -> BanditLog:  # type: ignore[type-arg]
    return world.log_from_parts(parts)


def loglog_slope(
    rounds: np.ndarray, cum_regret: np.ndarray, decades: float = 2.0, n_points: int = 50
) -> float:
    """Least-squares slope s of log R(t) on log t over the last ``decades`` decades.

    R is interpolated (log–log) at ``n_points`` log-spaced rounds in [T/10^decades, T], so every
    part of the window weighs the same however densely it was recorded. Rounds with R = 0 are
    left out; NaN when fewer than two remain.
    """
    t = np.asarray(rounds, dtype=np.float64)
    r = np.asarray(cum_regret, dtype=np.float64)
    keep = r > 0
    if keep.sum() < 2:
        return float("nan")
    t, r = t[keep], r[keep]
    lo = max(t.max() / 10.0**decades, t.min())
    grid = np.geomspace(lo, t.max(), n_points)
    log_r = np.interp(np.log(grid), np.log(t), np.log(r))
    return float(np.polyfit(np.log(grid), log_r, 1)[0])


def oracle_value(world: World) -> float:
    """V* = E_x max_a q(x, a): the value of the per-context best ad (the regret's reference)."""
    users = world.population.users
    return float(world.expected_reward(users).max(axis=1) @ world.population.weights)


def log_filename(name: str) -> str:
    """A file-system-safe parquet file name for a learner's log."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") + ".parquet"


def run_learners(
    world: World,
    make: dict[str, Callable[[int], BanditPolicy]],
    n_rounds: int,
    seeds: Sequence[np.random.SeedSequence],
    batch_sizes: dict[str, int],
    delay: int = 0,
    progress: bool = True,
) -> dict[str, list[LearnerTrace]]:
    """Every learner of ``make`` (name → policy factory taking a seed) over every seed.

    Run ``i`` uses the traffic seed ``seeds[i]`` for every learner, and policy seed
    ``seeds[i]``'s first generated word; only run 0 keeps its log.
    """
    from tqdm.auto import tqdm

    total = len(make) * len(seeds) * n_rounds
    bar = tqdm(total=total, desc="online learners", unit="req", disable=not progress,
               file=sys.stderr, leave=False)
    out: dict[str, list[LearnerTrace]] = {}
    for name, factory in make.items():
        out[name] = []
        for i, ss in enumerate(seeds):
            bar.set_postfix_str(f"{name} seed {i}")
            traffic, policy_ss = ss.spawn(2)
            policy = factory(int(policy_ss.generate_state(1, np.uint64)[0] >> np.uint64(1)))
            out[name].append(play(
                world, policy, n_rounds, traffic, batch_sizes[name], delay, keep_log=i == 0,
                on_batch=bar.update,
            ))
    bar.close()
    return out


def _band(x: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Student-t half-width over axis 0 (half-width 0 for a single seed)."""
    from scipy.stats import t

    mean = x.mean(axis=0)
    if x.shape[0] < 2:
        return mean, np.zeros_like(mean)
    half = t.ppf(0.5 + confidence / 2, x.shape[0] - 1) * x.std(axis=0, ddof=1) / np.sqrt(x.shape[0])
    return mean, half


def summarise_learners(
    world: World,
    traces: dict[str, list[LearnerTrace]],
    batch_sizes: dict[str, int],
    confidence: float = 0.95,
    decades: float = 2.0,
) -> pd.DataFrame:
    """One row per learner, ranked by mean final regret (lowest first).

    Columns: ``rounds, n_seeds, batch``; ``regret`` (mean R(T)) and ``regret_ci`` (Student-t
    half-width over seeds); ``expected_regret`` (R̄(T)) and its ``_ci``; ``slope`` (log–log slope
    of the mean curve over the last ``decades`` decades) and ``slope_ci`` (over the seeds'
    slopes); ``avg_reward`` (mean realised reward per round), ``avg_expected_reward`` (mean
    q(x_t, a_t)), ``oracle_reward`` (mean max_a q(x_t, a)), ``pct_oracle`` = 100 ·
    avg_expected_reward / oracle_reward; ``final_value`` (exact value V(π_T) of the learner after
    its last update, mean over seeds) and ``oracle_value`` (V* of the world).
    """
    v_star = oracle_value(world)
    rows = []
    for name, runs in traces.items():
        t_max = runs[0].n_rounds
        reg = np.array([r.cum_regret for r in runs])
        mean_curve, _ = _band(reg, confidence)
        half = lambda x: float(_band(x[:, None], confidence)[1][0])  # noqa: E731
        end = {k: np.array([getattr(r, k)[-1] for r in runs]) for k in (
            "cum_regret", "cum_expected_regret", "cum_reward", "cum_expected_reward",
            "cum_oracle_reward",
        )}
        slopes = np.array([r.slope(decades) for r in runs])
        values = np.array([policy_value(world, r.policy) for r in runs])
        row = {
            "policy": name, "rounds": t_max, "n_seeds": len(runs), "batch": batch_sizes[name],
            "regret": float(end["cum_regret"].mean()),
            "regret_ci": half(end["cum_regret"]),
            "expected_regret": float(end["cum_expected_regret"].mean()),
            "expected_regret_ci": half(end["cum_expected_regret"]),
            "slope": loglog_slope(runs[0].rounds, mean_curve, decades),
            "slope_ci": half(slopes),
            "avg_reward": float(end["cum_reward"].mean() / t_max),
            "avg_expected_reward": float(end["cum_expected_reward"].mean() / t_max),
            "oracle_reward": float(end["cum_oracle_reward"].mean() / t_max),
            "final_value": float(values.mean()),
            "oracle_value": v_star,
        }
        row["pct_oracle"] = 100.0 * row["avg_expected_reward"] / row["oracle_reward"]
        rows.append(row)
    board = pd.DataFrame(rows).sort_values("regret", kind="stable")
    board.insert(0, "rank", np.arange(1, len(board) + 1))
    return board.reset_index(drop=True)


def band_curves(
    curves: dict[str, np.ndarray], rounds: np.ndarray, confidence: float = 0.95,
    label: str = "regret",
) -> pd.DataFrame:
    """Long table ``policy, round, <label>_mean, <label>_low, <label>_high`` from each policy's
    ``(n_seeds, len(rounds))`` curves (band = Student-t interval of the mean over seeds)."""
    frames = []
    for name, x in curves.items():
        mean, half = _band(np.asarray(x, dtype=np.float64), confidence)
        frames.append(pd.DataFrame({
            "policy": name, "round": rounds, f"{label}_mean": mean, f"{label}_low": mean - half,
            f"{label}_high": mean + half,
        }))
    return pd.concat(frames, ignore_index=True)


def regret_curves(traces: dict[str, list[LearnerTrace]], confidence: float = 0.95) -> pd.DataFrame:
    """Long table of the learners' curves: ``policy, round, regret_mean, regret_low,
    regret_high, expected_regret_mean, expected_regret_low, expected_regret_high, reward_mean``
    (band = Student-t interval of the mean over seeds)."""
    rounds = {name: runs[0].rounds for name, runs in traces.items()}
    parts = []
    for name, runs in traces.items():
        reg = band_curves({name: np.array([r.cum_regret for r in runs])}, rounds[name], confidence)
        exp = band_curves({name: np.array([r.cum_expected_regret for r in runs])}, rounds[name],
                          confidence, label="expected_regret")
        reg = pd.concat([reg, exp.drop(columns=["policy", "round"])], axis=1)
        reg["reward_mean"] = np.mean([r.cum_reward for r in runs], axis=0)
        parts.append(reg)
    return pd.concat(parts, ignore_index=True)


def format_regret_table(board: pd.DataFrame, decades: float = 2.0) -> str:
    """Text table of :func:`summarise_learners`: regret ± half-width, slope, rewards."""
    t_max = int(board["rounds"].max())
    lo = max(1, int(round(t_max / 10.0**decades)))
    header = ["rank", "learner", f"regret R({t_max:,})", "expected R̄", f"slope {lo:,}–{t_max:,}",
              "avg reward", "% of oracle", "final V(π_T)"]
    lines = []
    for _, r in board.iterrows():
        pm = lambda v, ci, d: f"{v:.{d}f}" + (f" ± {ci:.{d}f}" if ci > 0 else "")  # noqa: E731
        lines.append([
            str(r["rank"]), str(r["policy"]), pm(r["regret"], r["regret_ci"], 1),
            pm(r["expected_regret"], r["expected_regret_ci"], 1),
            pm(r["slope"], r["slope_ci"], 2), f"{r['avg_reward']:.4f}",
            f"{r['pct_oracle']:.1f}", f"{r['final_value']:.4f}",
        ])
    widths = [max(len(h), *(len(x[i]) for x in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    v_star = float(board["oracle_value"].iloc[0])
    return "\n".join([
        fmt(header), fmt(["-" * w for w in widths]), *(fmt(x) for x in lines), "",
        f"oracle value V* = {v_star:.4f} (per-context best ad); regret against max_a q(x_t, a)"
        f" per round; ± = Student-t {int(board['n_seeds'].iloc[0])}-seed interval",
    ])
