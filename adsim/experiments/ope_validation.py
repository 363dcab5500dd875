"""Estimator validation against ground truth: bias, RMSE, relative error and interval coverage.

For a world with known click probabilities the value of any policy is known exactly
(:func:`adsim.env.oracle.policy_value`). :func:`run_validation` draws, for every seed, a fresh log
of ``max(sample_sizes)`` rounds under the logging policy, evaluates every target policy on the
first n rounds for each n in ``sample_sizes`` with every estimator, and compares each estimate
:math:`\\hat V_s` with the exact :math:`V`:

.. math::
    \\text{bias} = \\overline{\\hat V_s - V},\\quad
    \\text{RMSE} = \\sqrt{\\overline{(\\hat V_s - V)^2}},\\quad
    \\text{rel. bias} = \\text{bias}/V,\\quad \\text{rel. RMSE} = \\text{RMSE}/V,\\quad
    \\text{coverage} = \\overline{1\\{\\text{ci}_{\\text{low}} \\le V \\le \\text{ci}_{\\text{high}}\\}}

(means over seeds), with the Monte-Carlo standard errors of bias and coverage. The world, the
logging policy, the targets and the reward model q̂ (fitted once on a separate training log, so
it is independent of every evaluation log) are fixed across seeds; only the evaluation log varies.
Seeds are independent streams ``SeedSequence([seed, s])``, so results do not depend on
``n_jobs``.

Scenario file: ``scenarios/ope_validation.yaml`` (schema :class:`ValidationConfig`); command:
``adsim ope-validate scenarios/ope_validation.yaml --seeds 200 --out runs/ope_validation``.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from adsim.config import PolicyConfig, SoftmaxPolicyConfig, StrictModel, WorldConfig, load_config

__all__ = ["ValidationConfig", "ValidationResult", "run_validation", "load_validation"]


class ValidationConfig(StrictModel):
    """``adsim ope-validate`` scenario: estimators vs the world's exact policy values."""

    name: str = Field(default="ope_validation", min_length=1, description="Name in reports.")
    seed: int = Field(default=0, ge=0, description="Master seed (world, policies, logs).")
    world: WorldConfig = Field(default_factory=WorldConfig)
    logging_policy: PolicyConfig = Field(
        default_factory=lambda: SoftmaxPolicyConfig(
            type="softmax", temperature=1.0, model="noisy_truth"
        ),
        description="Policy that produces every log (its propensities are recorded).",
    )
    targets: list[PolicyConfig] = Field(min_length=1, description="Policies whose value is estimated.")
    sample_sizes: list[int] = Field(
        default_factory=lambda: [1000, 10_000, 100_000], min_length=1,
        description="Log lengths n (each seed's log is cut to its first n rounds).",
    )
    n_seeds: int = Field(default=200, ge=2, le=1_000_000, description="Independent logs per n.")
    estimators: list[str] = Field(
        default_factory=lambda: ["dm", "ips", "snips", "dr", "sndr", "switch_dr_slope",
                                 "dr_os_slope"],
        min_length=1, description="Estimators to validate (names as in adsim.estimators.ope).",
    )
    reward_model: Literal["fitted", "noisy_truth", "truth"] = Field(
        default="fitted",
        description=(
            "q̂ for DM/DR: 'fitted' = per-ad logistic regression on a separate training log;"
            " 'noisy_truth' = the truth with parameter noise; 'truth' = exact q."
        ),
    )
    reward_model_noise: float = Field(default=0.5, ge=0.0, description="Noise for noisy_truth q̂.")
    n_train_rounds: int = Field(default=20_000, ge=100, description="Training log for q̂ / fitted.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    interval: Literal["clt", "bootstrap", "bernstein"] = Field(
        default="clt", description="Interval method of every estimator."
    )
    bootstrap_scheme: Literal["multinomial", "half"] = Field(
        default="half", description="Resampling scheme when interval = bootstrap."
    )
    n_bootstrap: int = Field(default=1000, ge=10, description="Resamples when interval = bootstrap.")

    @field_validator("estimators")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        from adsim.estimators.registry import ESTIMATORS
        from adsim.estimators.slate import SLATE_ESTIMATORS

        for name in v:
            if name not in ESTIMATORS or name in SLATE_ESTIMATORS:
                raise ValueError(
                    f"unknown estimator {name!r}; choose from"
                    f" {sorted(set(ESTIMATORS) - set(SLATE_ESTIMATORS))}"
                )
        return v

    @field_validator("sample_sizes")
    @classmethod
    def _sizes(cls, v: list[int]) -> list[int]:
        if any(n < 10 for n in v):
            raise ValueError(f"every sample size must be >= 10, got {v}")
        return sorted(set(v))

    @field_validator("targets")
    @classmethod
    def _unique(cls, v: list[PolicyConfig]) -> list[PolicyConfig]:
        names = [c.name or c.type for c in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two targets are named {dup[0]!r}; give each a distinct 'name'")
        return v


def load_validation(path: str | os.PathLike[str]) -> ValidationConfig:
    """Load and validate an ``ope-validate`` scenario file (errors name file, line and field)."""
    return load_config(path, ValidationConfig)


@dataclass
class _Setup:
    world: object
    logger: object
    targets: list[tuple[str, object, float]]
    q_model: object


def _setup(cfg: ValidationConfig) -> _Setup:
    from adsim.env.oracle import policy_value
    from adsim.env.world import World
    from adsim.experiments.builders import PolicyBuilder, policy_label

    streams = np.random.SeedSequence(cfg.seed).spawn(4)
    rng_world, rng_logger, rng_train, rng_policy = (np.random.default_rng(s) for s in streams)
    world = World.from_config(cfg.world, rng_world)
    logger = PolicyBuilder(world, rng_logger).build(cfg.logging_policy)
    train_log = world.collect(logger, cfg.n_train_rounds, rng_train)
    builder = PolicyBuilder(world, rng_policy, train_log=train_log)
    targets = []
    for t in cfg.targets:
        policy = builder.build(t)
        targets.append((policy_label(t), policy, policy_value(world, policy)))
    if cfg.reward_model == "fitted":
        q_model = builder.fitted_model()
    elif cfg.reward_model == "truth":
        q_model = _TruthQ(world, None)
    else:
        q_model = _TruthQ(world, world.truth.perturbed(cfg.reward_model_noise, rng_policy))
    return _Setup(world, logger, targets, q_model)


@dataclass
class _TruthQ:
    world: object
    truth: object | None

    def predict(self, contexts: object) -> np.ndarray:
        if self.truth is None:
            return self.world.expected_reward(contexts)  # type: ignore[attr-defined]
        q = self.truth.ctr(contexts)  # type: ignore[attr-defined]
        if self.world.reward == "value":  # type: ignore[attr-defined]
            q = q * self.world.catalog.values  # type: ignore[attr-defined]
        return q


def _one_seed(args: tuple[ValidationConfig, _Setup, int]) -> list[dict]:
    from adsim.env.logs import BanditLog
    from adsim.estimators.base import check_action_dist
    from adsim.estimators.diagnostics import OverlapWarning, overlap_diagnostics
    from adsim.estimators.registry import make_estimator

    cfg, st, s = args
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, s]))
    n_max = max(cfg.sample_sizes)
    world, logger = st.world, st.logger
    ctx = world.sample_contexts(n_max, rng)  # type: ignore[attr-defined]
    dist = logger.action_dist(ctx)  # type: ignore[attr-defined]
    actions = logger.sample_from(dist, rng)  # type: ignore[attr-defined]
    reward, _ = world.simulate(ctx, actions, rng)  # type: ignore[attr-defined]
    pscore = dist[np.arange(n_max), actions]
    q_all = st.q_model.predict(ctx)  # type: ignore[attr-defined]
    ests = [make_estimator(e, confidence=cfg.confidence, interval=cfg.interval,
                           bootstrap_scheme=cfg.bootstrap_scheme, n_bootstrap=cfg.n_bootstrap,
                           random_state=s, warn=False) for e in cfg.estimators]
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OverlapWarning)
        for tname, policy, truth in st.targets:
            pi_all = policy.action_dist(ctx)  # type: ignore[attr-defined]
            for n in cfg.sample_sizes:
                log = BanditLog(actions[:n], reward[:n], pscore[:n], world.n_actions)  # type: ignore[attr-defined]
                pi = check_action_dist(pi_all[:n], log)
                q = q_all[:n]
                diag = overlap_diagnostics(log, pi)
                for est in ests:
                    e = est._estimate_checked(log, pi, q if est.needs_reward_model else None, diag)
                    rows.append({
                        "target": tname, "n_rounds": n, "estimator": e.estimator, "seed": s,
                        "truth": truth, "value": e.value, "ci_low": e.ci_low,
                        "ci_high": e.ci_high, "ess_share": diag.ess_share,
                    })
    return rows


@dataclass
class ValidationResult:
    """Per-seed estimates (``raw``) and their summary (``summary``) against the exact values."""

    config: ValidationConfig
    raw: pd.DataFrame
    summary: pd.DataFrame

    def table(self) -> str:
        cols = ["target", "n_rounds", "estimator", "truth", "rel_bias", "rel_rmse", "coverage",
                "n_seeds"]
        df = self.summary[cols].copy()
        df["rel_bias"] = (100 * df["rel_bias"]).map("{:+.3f}%".format)
        df["rel_rmse"] = (100 * df["rel_rmse"]).map("{:.3f}%".format)
        df["coverage"] = (100 * df["coverage"]).map("{:.1f}%".format)
        df["truth"] = df["truth"].map("{:.6f}".format)
        return df.to_string(index=False)

    def plots_png(self) -> dict[str, bytes]:
        """``error_vs_n.png`` (relative RMSE vs n) and ``coverage.png`` (coverage at max n)."""
        from adsim._figures import figure_bytes, new_figure

        out: dict[str, bytes] = {}
        sm = self.summary
        targets = list(dict.fromkeys(sm["target"]))
        from adsim.experiments.plots import plot_error_vs_n

        fig = plot_error_vs_n(sm, "logged rounds n", "relative RMSE vs exact value (%)")
        out["error_vs_n.png"] = figure_bytes(fig)

        n_max = sm["n_rounds"].max()
        top = sm[sm["n_rounds"] == n_max]
        ests = list(dict.fromkeys(top["estimator"]))
        fig, ax = new_figure((1.2 * len(ests) * len(targets) / 2 + 3, 3.8))
        width = 0.8 / len(targets)
        x = np.arange(len(ests))
        for j, t in enumerate(targets):
            sub = top[top["target"] == t].set_index("estimator").reindex(ests)
            ax.bar(x + j * width, 100 * sub["coverage"], width, yerr=100 * sub["coverage_se"],
                   label=t, capsize=2)
        conf = 100 * self.config.confidence
        ax.axhline(conf, color="k", lw=1, ls="--", label=f"nominal {conf:.0f}%")
        ax.set_xticks(x + width * (len(targets) - 1) / 2, ests, rotation=30, ha="right")
        ax.set_ylim(max(0, min(50, float(100 * top["coverage"].min()) - 5)), 101)
        ax.set_ylabel(f"interval coverage at n = {n_max:,} (%)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        out["coverage.png"] = figure_bytes(fig)
        return out

    def write(self, out_dir: str | os.PathLike[str]) -> list[Path]:
        """``summary.csv``, ``estimates.csv`` (per seed), ``report.json`` and the two plots."""
        from adsim._io import write_text, write_with

        out = Path(out_dir)
        texts = {
            "summary.csv": self.summary.to_csv(index=False),
            "estimates.csv": self.raw.to_csv(index=False),
            "report.json": json.dumps(
                {"config": self.config.model_dump(mode="json"),
                 "summary": json.loads(self.summary.to_json(orient="records"))},
                indent=2, sort_keys=True) + "\n",
        }
        pngs = self.plots_png()
        paths = []
        for name, text in texts.items():
            write_text(out / name, text)
            paths.append(out / name)
        for name, data in pngs.items():
            write_with(out / name, lambda tmp, d=data: tmp.write_bytes(d))
            paths.append(out / name)
        return paths


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    """Bias, RMSE, relative errors and coverage (with Monte-Carlo SEs) per target, n, estimator."""
    df = raw.assign(
        err=raw["value"] - raw["truth"],
        covered=((raw["ci_low"] <= raw["truth"]) & (raw["truth"] <= raw["ci_high"])).astype(float),
        width=raw["ci_high"] - raw["ci_low"],
    )
    g = df.groupby(["target", "n_rounds", "estimator"], sort=False)
    sm = g.agg(
        truth=("truth", "first"), mean_value=("value", "mean"), bias=("err", "mean"),
        err_sd=("err", "std"), mse=("err", lambda e: float(np.mean(np.square(e)))),
        mean_abs_err=("err", lambda e: float(np.mean(np.abs(e)))),
        coverage=("covered", "mean"), mean_width=("width", "mean"),
        ess_share=("ess_share", "mean"), n_seeds=("seed", "nunique"),
    ).reset_index()
    sm["rmse"] = np.sqrt(sm.pop("mse"))
    sm["bias_se"] = sm["err_sd"] / np.sqrt(sm["n_seeds"])
    sm["rel_bias"] = sm["bias"] / sm["truth"]
    sm["rel_bias_se"] = sm["bias_se"] / sm["truth"].abs()
    sm["rel_rmse"] = sm["rmse"] / sm["truth"]
    sm["rel_mean_abs_err"] = sm["mean_abs_err"] / sm["truth"]
    sm["coverage_se"] = np.sqrt(sm["coverage"] * (1 - sm["coverage"]) / sm["n_seeds"])
    return sm


def run_validation(
    cfg: ValidationConfig, n_seeds: int | None = None, n_jobs: int = 1, progress: bool = False
) -> ValidationResult:
    """Run the validation (see module docstring); ``n_seeds`` overrides the config's."""
    seeds = range(cfg.n_seeds if n_seeds is None else n_seeds)
    st = _setup(cfg)
    jobs = [(cfg, st, s) for s in seeds]
    rows: list[dict] = []
    if n_jobs > 1:
        with ProcessPoolExecutor(n_jobs) as pool:
            for r in pool.map(_one_seed, jobs, chunksize=max(1, len(jobs) // (4 * n_jobs))):
                rows.extend(r)
    else:
        from tqdm import tqdm

        for job in tqdm(jobs, disable=not progress, desc=cfg.name, leave=False):
            rows.extend(_one_seed(job))
    raw = pd.DataFrame(rows)
    return ValidationResult(cfg, raw, summarise(raw))
