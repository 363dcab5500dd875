"""Scenario configuration: typed schema (pydantic) and YAML loading with clear errors.

A scenario file describes one experiment: the world, the logging policy, the candidate policies
and how to evaluate them. :func:`load_scenario` reads and validates it; every problem becomes one
:class:`~adsim.errors.ConfigError` whose message names the file, the line and the path inside the
file, e.g. ``quickstart.yaml:7: world.n_ads: must be >= 2, got 0``.

:func:`load_config` is the same machinery for any other pydantic config (training, serving).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from adsim.errors import ConfigError

__all__ = [
    "StrictModel",
    "SparseFieldConfig",
    "ParametricTruthConfig",
    "TrainedTruthConfig",
    "WorldConfig",
    "UniformPolicyConfig",
    "EpsilonGreedyPolicyConfig",
    "SoftmaxPolicyConfig",
    "ThompsonPolicyConfig",
    "PolicyConfig",
    "EvaluationConfig",
    "LogNormalMarketConfig",
    "TruthfulMarketConfig",
    "MarketConfig",
    "BidderConfig",
    "CampaignConfig",
    "ConversionConfig",
    "TrafficConfig",
    "AuctionConfig",
    "BiddingConfig",
    "BidderPolicyConfig",
    "RLTrainConfig",
    "Scenario",
    "load_config",
    "load_scenario",
    "parse_config",
    "scenario_json_schema",
]


class StrictModel(BaseModel):
    """Base for every user-facing config: unknown keys are errors, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------------------- world
class SparseFieldConfig(StrictModel):
    """A categorical user feature."""

    name: str = Field(min_length=1, description="Column name of the field.")
    vocab_size: int = Field(ge=2, le=1_000_000, description="Number of distinct values.")
    zipf: float = Field(
        default=1.0, ge=0.0, le=5.0,
        description="Popularity skew: value of rank r has probability ∝ r^-zipf (0 = uniform).",
    )


class ParametricTruthConfig(StrictModel):
    """Logistic click model: logit p(click | user u, ad k) = b_k + s·(x_u · e_k) + Σ_f t_f[c_uf, k]."""

    type: Literal["parametric"] = "parametric"
    base_ctr: float = Field(default=0.05, gt=0.0, lt=1.0, description="Typical click-through rate.")
    effect_scale: float = Field(
        default=1.0, ge=0.0, le=10.0, description="Strength s of user×ad feature effects on the logit."
    )
    ad_bias_sd: float = Field(
        default=0.5, ge=0.0, le=5.0, description="Standard deviation of the per-ad logit bias b_k."
    )
    sparse_effect_sd: float = Field(
        default=0.3, ge=0.0, le=5.0, description="Standard deviation of the field×value×ad effects t_f."
    )


# ================================================================ trained world (issue 8) ====
class TrainedTruthConfig(StrictModel):
    """A trained CTR/CVR run folder (``adsim train``) as the world's ground truth: synthetic users
    are drawn from the fitted feature distribution, the network's calibrated probabilities define
    clicks and conversions (see :mod:`adsim.env.trained`). ``world.n_dense``/``sparse_fields`` are
    not used: the run's features are."""

    type: Literal["trained"]
    run: str = Field(
        min_length=1,
        description="Run folder written by `adsim train` (checkpoint.pt, preprocessors.json,"
        " calibrator.json); relative to the working directory.",
    )
    ad_fields: list[str] = Field(
        min_length=1,
        description="Feature columns that describe the ad; the others describe the user. The ads"
        " are the world.n_ads most frequent combinations of their values in the training rows.",
    )
    users: Literal["rows", "copula"] = Field(
        default="rows",
        description="How users are sampled: whole training rows (all correlations kept) or a"
        " Gaussian copula of the per-column marginals.",
    )
    click_task: str | None = Field(default=None, description="Output defining clicks (default: the first task).")
    conversion_task: str | None = Field(
        default=None,
        description="Output giving P(click and conversion) (default: the second task, if any).",
    )
    calibrated: bool = Field(default=True, description="Apply the run's calibrators.")
    data: str | None = Field(
        default=None,
        description="Prepared-data folder to fit the user distribution on (default: the run's"
        " world_features.json, else its config's data.processed_dir).",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="cpu", description="Inference device.")
    batch_size: int = Field(default=65_536, ge=1, le=10_000_000, description="(user, ad) pairs per forward pass.")
    cache: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Precompute every user's probabilities at build time (auto: when n_users ×"
        " n_ads <= 20M).",
    )


TruthConfig = Annotated[
    Union[ParametricTruthConfig, TrainedTruthConfig], Field(discriminator="type")
]
# ============================================================ end of trained world (issue 8) ==


class WorldConfig(StrictModel):
    """The simulated world: a finite user population, a catalogue of ads and a click model."""

    n_users: int = Field(default=5000, ge=10, le=10_000_000, description="Users in the population.")
    n_ads: int = Field(default=10, ge=2, le=100_000, description="Ads (actions) to choose from.")
    n_dense: int = Field(default=5, ge=0, le=1024, description="Dense (Gaussian) user features.")
    sparse_fields: list[SparseFieldConfig] = Field(
        default_factory=lambda: [
            SparseFieldConfig(name="region", vocab_size=8),
            SparseFieldConfig(name="device", vocab_size=3, zipf=0.5),
        ],
        description="Categorical user features.",
    )
    reward: Literal["click", "value"] = Field(
        default="click", description="Reward of an impression: the click (0/1) or value_k × click."
    )
    value_sigma: float = Field(
        default=0.5, ge=0.0, le=5.0,
        description="Ad values per click are log-normal(0, value_sigma) (used when reward = value).",
    )
    truth: TruthConfig = Field(default_factory=ParametricTruthConfig)

    @field_validator("sparse_fields")
    @classmethod
    def _unique_field_names(cls, v: list[SparseFieldConfig]) -> list[SparseFieldConfig]:
        names = [f.name for f in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate field name {dup[0]!r}; each field needs its own name")
        return v


# ------------------------------------------------------------------------------------ policies
ModelChoice = Literal["fitted", "noisy_truth", "truth"]


class _PolicyBase(StrictModel):
    name: str | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


class _ScoredPolicyBase(_PolicyBase):
    model: ModelChoice = Field(
        default="fitted",
        description=(
            "CTR estimates the policy acts on: 'fitted' (logistic regression on the training log),"
            " 'noisy_truth' (the true model with parameter noise model_noise) or 'truth'."
        ),
    )
    model_noise: float = Field(
        default=0.5, ge=0.0, le=10.0, description="Parameter noise for model = noisy_truth."
    )


class UniformPolicyConfig(_PolicyBase):
    """Every ad with probability 1/K."""

    type: Literal["uniform"]


class EpsilonGreedyPolicyConfig(_ScoredPolicyBase):
    """Best estimated ad with probability 1-ε, otherwise uniform."""

    type: Literal["epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="Exploration probability ε.")


class SoftmaxPolicyConfig(_ScoredPolicyBase):
    """π(a|x) ∝ exp(score(x, a) / temperature), score = estimated logit."""

    type: Literal["softmax"]
    temperature: float = Field(default=0.5, gt=0.0, le=1e6, description="Softmax temperature.")


class ThompsonPolicyConfig(_PolicyBase):
    """Logistic Thompson sampling with a Laplace posterior fitted on the training log."""

    type: Literal["thompson"]
    prior_precision: float = Field(default=1.0, gt=0.0, description="Gaussian prior precision λ.")
    n_samples: int = Field(
        default=200, ge=10, le=100_000,
        description="Posterior draws used to compute the action distribution.",
    )


# =========================================================== policies and bidding (issue 5) ====
# Learning bandit policies, bidding policies (pacing, shading, CPA, TS + Lagrangian, RL) and the
# bidding leaderboard / RL training sections of a scenario. Used by adsim.policies.factory,
# adsim.policies.bidding, adsim.policies.rl and adsim.experiments.bidding.


class LinUCBPolicyConfig(_PolicyBase):
    """Disjoint LinUCB (Li et al. 2010): argmax_a x·θ̂_a + α·sqrt(xᵀA_a⁻¹x), ridge per ad."""

    type: Literal["linucb"]
    alpha: float = Field(default=1.0, ge=0.0, le=100.0, description="Width α of the bonus.")
    ridge: float = Field(default=1.0, gt=0.0, le=1e6, description="Ridge prior precision λ.")


class LinearThompsonPolicyConfig(_PolicyBase):
    """Linear Thompson sampling (Agrawal & Goyal 2013): θ̃_a ~ N(θ̂_a, v²A_a⁻¹)."""

    type: Literal["lin_thompson"]
    v: float = Field(default=0.25, gt=0.0, le=100.0, description="Posterior scale v.")
    ridge: float = Field(default=1.0, gt=0.0, le=1e6, description="Ridge prior precision λ.")


class EnsembleThompsonPolicyConfig(_PolicyBase):
    """Thompson sampling by a bootstrap ensemble of small CTR networks (Osband et al. 2016)."""

    type: Literal["ensemble_thompson"]
    n_members: int = Field(default=10, ge=2, le=256, description="Ensemble members M.")
    hidden: int = Field(default=32, ge=1, le=4096, description="Hidden units of each member.")
    lr: float = Field(default=0.01, gt=0.0, le=1.0, description="Adam learning rate.")
    steps_per_update: int = Field(
        default=50, ge=1, le=100_000, description="Gradient steps after each batch of feedback."
    )
    batch_size: int = Field(default=512, ge=8, le=1_000_000, description="Minibatch size.")


class OnlineGreedyPolicyConfig(_PolicyBase):
    """ε-greedy over an online Laplace logistic model (the learning baseline for Thompson)."""

    type: Literal["online_epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="Exploration probability ε.")
    prior_precision: float = Field(default=1.0, gt=0.0, description="Gaussian prior precision.")


LEARNING_POLICY_CONFIGS: tuple[type[StrictModel], ...] = (
    LinUCBPolicyConfig, LinearThompsonPolicyConfig, EnsembleThompsonPolicyConfig,
    OnlineGreedyPolicyConfig,
)  # bandit types that learn from the training log (cannot be the logging policy)


class _BidderBase(StrictModel):
    name: str | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


class TruthfulBidderPolicyConfig(_BidderBase):
    """bid = scale × value (value = value per click × pCTR [× pCVR] in bid units)."""

    type: Literal["truthful"]
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Multiplier on value.")


class ConstantPacingPolicyConfig(_BidderBase):
    """Truthful bids, spending capped at budget / n_steps per step (naive even pacing)."""

    type: Literal["constant_pacing"]


class DualPacingPolicyConfig(_BidderBase):
    """Lagrangian dual pacing (Balseiro, Lu & Mirrokni 2020): bid = v/(1+λ), λ by mirror descent
    on (spend − target spend) per step."""

    type: Literal["dual_pacing"]
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Dual step size η.")
    mirror: Literal["euclidean", "entropic"] = Field(
        default="entropic",
        description="euclidean: λ ← max(0, λ − η g) (projected); entropic: λ ← λ·exp(−η g).",
    )
    lambda0: float = Field(default=1.0, ge=0.0, le=1e4, description="Initial λ.")
    target: Literal["traffic", "even"] = Field(
        default="traffic",
        description="Target spend per step: budget × the step's expected traffic share, or even.",
    )
    adaptive: bool = Field(
        default=True,
        description="Target from the budget still left over the traffic still to come.",
    )
    max_step_spend: float | None = Field(
        default=3.0, gt=1.0, le=1e6,
        description="Throttle: spend at most this × the step's target (null = no cap).",
    )
    g_max: float = Field(
        default=2.0, gt=0.0, le=1e3,
        description="Overspend gradients (c_t − ρ_t)/ρ_t are clipped at g_max.",
    )


class PIDPacingPolicyConfig(_BidderBase):
    """PID controller on the spend rate: bid = v·exp(u), u = Kp e + Ki Σe + Kd Δe."""

    type: Literal["pid_pacing"]
    kp: float = Field(default=0.5, ge=0.0, le=100.0, description="Proportional gain.")
    ki: float = Field(default=0.2, ge=0.0, le=100.0, description="Integral gain.")
    kd: float = Field(default=0.0, ge=0.0, le=100.0, description="Derivative gain.")
    u0: float = Field(default=-0.5, ge=-20.0, le=20.0, description="Initial log bid multiplier.")


class ShadedPacingPolicyConfig(_BidderBase):
    """First-price bid shading on top of dual pacing: b = argmax (v/(1+λ) − b)·ŵ(b), with a
    learned logistic win-rate curve ŵ(b)."""

    type: Literal["shaded_pacing"]
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Dual step size η.")
    lambda0: float = Field(default=0.5, ge=0.0, le=1e4, description="Initial λ.")
    initial_shade: float = Field(
        default=0.7, gt=0.0, le=1.0, description="Shading factor b/v before any data."
    )
    pace: bool = Field(default=True, description="Use the budget multiplier λ (else λ = 0).")


class CPAPacingPolicyConfig(_BidderBase):
    """Budget + CPA constraints, two multipliers: bid = (v + μ·T·â)/(1 + λ + μ)."""

    type: Literal["cpa_pacing"]
    target_cpa: float = Field(gt=0.0, description="Target cost per conversion T.")
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Budget step size η.")
    cpa_step_size: float = Field(default=2.0, gt=0.0, le=100.0, description="CPA step size η_μ.")
    lambda0: float = Field(default=1.0, ge=0.0, le=1e4, description="Initial λ.")


class TSLagrangianPolicyConfig(_BidderBase):
    """Thompson-sampled CTR (Bayesian logistic, Laplace) feeding dual pacing, learning online."""

    type: Literal["ts_lagrangian"]
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Dual step size η.")
    lambda0: float = Field(default=1.0, ge=0.0, le=1e4, description="Initial λ.")
    prior_precision: float = Field(default=1.0, gt=0.0, description="Gaussian prior precision.")
    prior_ctr: float = Field(
        default=0.05, gt=0.0, lt=1.0, description="Prior mean CTR (sets the intercept's prior)."
    )
    max_step_spend: float | None = Field(
        default=3.0, gt=1.0, le=1e6,
        description="Throttle: spend at most this × the step's target (null = no cap).",
    )


class RLPolicyConfig(_BidderBase):
    """A trained stable-baselines3 agent (``adsim train-rl``) choosing the bid scale every step."""

    type: Literal["rl"]
    model: str = Field(
        min_length=1,
        description="Model file written by `adsim train-rl` (.pt; relative paths from the cwd).",
    )


BidderPolicyConfig = Annotated[
    Union[
        TruthfulBidderPolicyConfig, ConstantPacingPolicyConfig, DualPacingPolicyConfig,
        PIDPacingPolicyConfig, ShadedPacingPolicyConfig, CPAPacingPolicyConfig,
        TSLagrangianPolicyConfig, RLPolicyConfig,
    ],
    Field(discriminator="type"),
]


class RLTrainConfig(StrictModel):
    """How ``adsim train-rl`` trains an SB3 agent on ``adsim/BudgetBidding-v0`` for this scenario."""

    algo: Literal["ppo", "sac", "dqn"] = Field(default="ppo", description="SB3 algorithm.")
    total_timesteps: int = Field(
        default=20_000, ge=1, le=100_000_000, description="Environment steps (decision steps)."
    )
    action_type: Literal["scale", "dual"] = Field(
        default="scale", description="What the action sets: log bid scale or dual variable."
    )
    max_scale: float = Field(
        default=16.0, gt=1.0, le=1e6, description="action_type scale: bid = value × max_scale^a."
    )
    max_dual: float = Field(
        default=30.0, gt=0.0, le=1e6,
        description="action_type dual: bid = value / (1 + λ), λ = max_dual × (a + 1) / 2.",
    )
    n_bins: int = Field(
        default=11, ge=2, le=1001, description="DQN only: discrete actions evenly over [-1, 1]."
    )
    learning_rate: float = Field(default=3e-4, gt=0.0, le=1.0, description="Learning rate.")
    reward: Literal["value", "expected"] = Field(
        default="expected", description="Env reward: realised or expected value of the step."
    )
    out: str = Field(default="models/rl_bidder.pt", min_length=1, description="Model path.")


class BiddingConfig(StrictModel):
    """The bidding leaderboard of an auction scenario: candidates bid for the ``agent`` campaign
    (or, with ``apply_to: all``, every campaign runs its own copy of the candidate)."""

    agent: str | None = Field(
        default=None, description="Campaign the candidates bid for (default: the first)."
    )
    apply_to: Literal["agent", "all"] = Field(
        default="agent",
        description="agent: others keep their configured bidders; all: every campaign uses "
        "its own copy of the candidate (several pacing agents in one auction).",
    )
    candidates: list[BidderPolicyConfig] = Field(
        min_length=1, description="Bidding policies to compare."
    )
    n_seeds: int = Field(default=5, ge=1, le=1000, description="Days (seeds) per candidate.")
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    rl: RLTrainConfig = Field(default_factory=RLTrainConfig, description="RL training.")

    @field_validator("candidates")
    @classmethod
    def _unique_bidder_names(cls, v: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for i, c in enumerate(v):
            label = c.name or c.type
            if label in seen:
                raise ValueError(
                    f"candidate {i} has the same name {label!r} as an earlier one; give it a"
                    " distinct 'name'"
                )
            seen.add(label)
        return v


# ====================================================== end of policies and bidding (issue 5) ==

PolicyConfig = Annotated[
    Union[
        UniformPolicyConfig, EpsilonGreedyPolicyConfig, SoftmaxPolicyConfig, ThompsonPolicyConfig,
        LinUCBPolicyConfig, LinearThompsonPolicyConfig, EnsembleThompsonPolicyConfig,
        OnlineGreedyPolicyConfig,
    ],
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------------- evaluation
EstimatorName = Literal[
    "dm", "ips", "snips", "dr", "sndr", "switch_dr", "dr_os", "switch_dr_slope", "dr_os_slope"
]


class EvaluationConfig(StrictModel):
    """How candidates are evaluated offline (estimators on the log) and exactly (the oracle)."""

    n_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000, description="Logged rounds used for estimation."
    )
    n_train_rounds: int = Field(
        default=20_000, ge=100, le=100_000_000,
        description="Separate logged rounds on which 'fitted' models and Thompson sampling learn.",
    )
    estimators: list[EstimatorName] = Field(
        default_factory=lambda: ["ips", "snips", "dr"], min_length=1,
        description="Off-policy estimators to run.",
    )
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0, description="Interval coverage.")
    n_online_rounds: int = Field(
        default=0, ge=0, le=100_000_000,
        description="If > 0, also simulate each candidate on-policy for this many rounds.",
    )


# ================================================================ auction world (issue 3) ====
# Everything an auction scenario can say: mechanism, market, campaigns and traffic. Used by
# adsim.env.auction_world, adsim.env.envs and adsim.experiments.auction_runner.

DEFAULT_DIURNAL: tuple[float, ...] = (
    0.35, 0.25, 0.2, 0.18, 0.2, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0, 1.05,
    1.1, 1.05, 1.0, 1.0, 1.05, 1.15, 1.3, 1.45, 1.5, 1.35, 1.0, 0.6,
)  # relative request rate per hour of the day (a typical two-hump web traffic day)


class LogNormalMarketConfig(StrictModel):
    """Competing demand as i.i.d. log-normal rank scores: each of ``n_competitors`` bids
    ``exp(N(mu, sigma²))`` on every request (1 competitor = the classic "market price" model)."""

    type: Literal["lognormal"] = "lognormal"
    mu: float = Field(default=-1.0, ge=-20.0, le=20.0, description="Mean of the log score.")
    sigma: float = Field(default=0.5, ge=0.0, le=5.0, description="Std of the log score.")
    n_competitors: int = Field(
        default=1, ge=0, le=1000, description="Competing bidders per auction (0 = none)."
    )


class TruthfulMarketConfig(StrictModel):
    """``n_bidders`` competing value bidders with their own ads: each bids its value per click
    (log-normal) × its true CTR for the request (a world ad it owns), i.e. its eCPM."""

    type: Literal["bidders"]
    n_bidders: int = Field(default=5, ge=1, le=1000, description="Competing bidders.")
    value_mu: float = Field(default=0.0, ge=-20.0, le=20.0, description="Mean log value per click.")
    value_sigma: float = Field(default=0.5, ge=0.0, le=5.0, description="Std of log value per click.")


MarketConfig = Annotated[
    Union[LogNormalMarketConfig, TruthfulMarketConfig], Field(discriminator="type")
]


class BidderConfig(StrictModel):
    """A baseline bidding policy for a campaign (full pacing policies come with issue 5).

    * ``truthful``: bid the expected value of the impression (× ``scale``).
    * ``constant_pacing``: truthful, but spend at most budget/n_steps per step (even pacing that
      ignores the daily traffic curve — the naive baseline).
    * ``fixed``: the same ``amount`` on every request.
    """

    type: Literal["truthful", "constant_pacing", "fixed"] = "truthful"
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Bid multiplier on value.")
    amount: float = Field(default=1.0, ge=0.0, description="Bid of type fixed.")


class CampaignConfig(StrictModel):
    """An advertiser's campaign: one ad, what a click/conversion is worth, a budget, targeting."""

    name: str = Field(min_length=1, description="Campaign label in results.")
    ad: int | None = Field(
        default=None, ge=0, description="World ad the campaign shows (default: its list position)."
    )
    budget: float | None = Field(
        default=None, gt=0.0, description="Daily budget; omit for unlimited."
    )
    value_per_click: float = Field(default=1.0, ge=0.0, description="Value of one click.")
    value_per_conversion: float = Field(default=0.0, ge=0.0, description="Value of one conversion.")
    targeting: dict[str, list[int]] = Field(
        default_factory=dict,
        description="Sparse field -> allowed values; the campaign only bids on matching users.",
    )
    bidder: BidderConfig = Field(default_factory=BidderConfig)


class ConversionConfig(StrictModel):
    """Post-click conversions: logistic CVR model (like the click model) with an optional delay."""

    base_cvr: float = Field(default=0.0, ge=0.0, lt=1.0, description="Typical CVR (0 = off).")
    delay_mean_hours: float = Field(
        default=0.0, ge=0.0, le=24 * 30,
        description="Mean exponential delay from click to conversion (0 = immediate).",
    )


class TrafficConfig(StrictModel):
    """Requests over one simulated day, split into decision steps."""

    n_requests: int = Field(default=100_000, ge=1, le=100_000_000, description="Requests per day.")
    n_steps: int = Field(default=96, ge=1, le=100_000, description="Decision steps per day.")
    diurnal: list[float] = Field(
        default_factory=lambda: list(DEFAULT_DIURNAL), min_length=1, max_length=1440,
        description="Relative request rate over the day (equal-width bins, e.g. 24 hours).",
    )

    @field_validator("diurnal")
    @classmethod
    def _positive_curve(cls, v: list[float]) -> list[float]:
        if any(not (x >= 0.0) for x in v) or sum(v) <= 0:
            raise ValueError("rates must be >= 0 with a positive sum")
        return v


class AuctionConfig(StrictModel):
    """The auction: mechanism, slots, reserve, ranking, the market, campaigns and traffic."""

    mechanism: Literal["second_price", "first_price", "gsp", "vcg"] = Field(
        default="second_price", description="Payment rule (see adsim.env.auction)."
    )
    n_slots: int = Field(default=1, ge=1, le=20, description="Ad slots per request.")
    examination: list[float] | None = Field(
        default=None,
        description="Examination probability per slot, non-increasing in (0, 1] (default 0.7^k).",
    )
    reserve: float = Field(default=0.0, ge=0.0, description="Reserve price in rank-score units.")
    reserve_sigma: float = Field(
        default=0.0, ge=0.0, le=5.0,
        description="> 0: per-request reserve = reserve × log-normal(0, reserve_sigma).",
    )
    ranking: Literal["bid", "ecpm"] = Field(
        default="bid",
        description="bid: bids per impression, ranked by bid; ecpm: bids per click, ranked by "
        "bid × pCTR and charged per click.",
    )
    market: MarketConfig = Field(default_factory=LogNormalMarketConfig)
    campaigns: list[CampaignConfig] = Field(min_length=1, description="Campaigns in the auction.")
    traffic: TrafficConfig = Field(default_factory=TrafficConfig)
    conversion: ConversionConfig = Field(default_factory=ConversionConfig)

    @model_validator(mode="after")
    def _consistent(self) -> AuctionConfig:
        if self.mechanism == "second_price" and self.n_slots != 1:
            raise ValueError(
                "mechanism 'second_price' sells one slot; set n_slots: 1 or use gsp or vcg"
            )
        if self.examination is not None:
            e = self.examination
            if len(e) != self.n_slots:
                raise ValueError(f"examination needs {self.n_slots} entries (one per slot), got {len(e)}")
            if any(not (0.0 < x <= 1.0) for x in e) or any(b > a for a, b in zip(e, e[1:])):
                raise ValueError("examination probabilities must be in (0, 1] and non-increasing")
        names = [c.name for c in self.campaigns]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"two campaigns are named {dup[0]!r}; give each its own name")
        return self

    def examination_probs(self) -> list[float]:
        """θ_k per slot (the configured list, or 0.7^k)."""
        if self.examination is not None:
            return list(self.examination)
        return [0.7**k for k in range(self.n_slots)]


def _check_auction_against_world(auction: AuctionConfig, world: WorldConfig) -> None:
    """Campaign ads and targeting must refer to things the world has."""
    fields = {f.name: f.vocab_size for f in world.sparse_fields}
    for i, c in enumerate(auction.campaigns):
        ad = c.ad if c.ad is not None else i
        if ad >= world.n_ads:
            raise ValueError(
                f"campaigns[{i}].ad is {ad} but world.n_ads is {world.n_ads}; use an ad in"
                f" [0, {world.n_ads}) or raise world.n_ads"
            )
        for name, values in c.targeting.items():
            if name not in fields:
                raise ValueError(
                    f"campaigns[{i}].targeting: unknown field {name!r}; world fields are"
                    f" {sorted(fields)}"
                )
            bad = [v for v in values if not 0 <= v < fields[name]]
            if bad or not values:
                raise ValueError(
                    f"campaigns[{i}].targeting.{name}: values must be a non-empty list in"
                    f" [0, {fields[name]}), got {values}"
                )
    if auction.market.type == "bidders":
        n_own = len(auction.campaigns)
        if n_own + auction.market.n_bidders > world.n_ads:
            raise ValueError(
                f"market.n_bidders ({auction.market.n_bidders}) + campaigns ({n_own}) need that"
                f" many world ads, but world.n_ads is {world.n_ads}; raise world.n_ads"
            )


# ============================================================ end of auction world (issue 3) ==


class Scenario(StrictModel):
    """One experiment: ``adsim run scenario.yaml``."""

    name: str = Field(min_length=1, description="Scenario name (used in reports).")
    description: str = Field(default="", description="Free text shown in the report.")
    seed: int = Field(default=0, ge=0, le=2**63 - 1, description="Master seed of every random draw.")
    world: WorldConfig = Field(default_factory=WorldConfig)
    auction: AuctionConfig | None = Field(
        default=None, description="An auction day (mechanism, market, campaigns, traffic)."
    )
    logging_policy: PolicyConfig = Field(
        default_factory=lambda: SoftmaxPolicyConfig(
            type="softmax", temperature=0.5, model="noisy_truth"
        ),
        description="The policy that produced the log (its propensities are recorded).",
    )
    candidates: list[PolicyConfig] = Field(
        default_factory=list, validate_default=True, description="Policies to evaluate."
    )
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    bidding: BiddingConfig | None = Field(
        default=None, description="Bidding leaderboard and RL training (needs 'auction')."
    )

    @field_validator("logging_policy")
    @classmethod
    def _logger_needs_no_training(cls, v: Any) -> Any:
        if isinstance(v, (ThompsonPolicyConfig, *LEARNING_POLICY_CONFIGS)):
            raise ValueError(
                f"type {v.type!r} learns from a training log, which the logging policy does not"
                " have; use softmax, epsilon_greedy or uniform"
            )
        if getattr(v, "model", None) == "fitted":
            raise ValueError(
                "model 'fitted' learns from a training log, which the logging policy does not"
                " have; use model: noisy_truth or truth"
            )
        return v

    @field_validator("candidates")
    @classmethod
    def _unique_names(cls, v: list[Any]) -> list[Any]:
        seen: set[str] = set()
        for i, c in enumerate(v):
            label = c.name or c.type
            if label in seen:
                raise ValueError(
                    f"candidate {i} has the same name {label!r} as an earlier one; give it a"
                    " distinct 'name'"
                )
            seen.add(label)
        return v

    @field_validator("auction")
    @classmethod
    def _auction_fits_world(cls, v: AuctionConfig | None, info: ValidationInfo) -> Any:
        world = info.data.get("world")
        if v is not None and world is not None:
            _check_auction_against_world(v, world)
        return v

    @field_validator("bidding")
    @classmethod
    def _bidding_needs_auction(cls, v: BiddingConfig | None, info: ValidationInfo) -> Any:
        if v is None or "auction" not in info.data:
            return v
        auction = info.data["auction"]
        if auction is None:
            raise ValueError("needs an 'auction' section (the campaigns the candidates bid for)")
        names = [c.name for c in auction.campaigns]
        if v.agent is not None and v.agent not in names:
            raise ValueError(f"agent {v.agent!r} is not a campaign; campaigns are {names}")
        return v

    @field_validator("candidates")
    @classmethod
    def _candidates_unless_auction(cls, v: list[Any], info: ValidationInfo) -> list[Any]:
        if not v and "auction" in info.data and info.data["auction"] is None:
            raise ValueError(
                "must have at least 1 item(s): list the policies to evaluate (only auction"
                " scenarios, with an 'auction' section, may leave it out)"
            )
        return v


# ------------------------------------------------------------------------- loading and errors
M = TypeVar("M", bound=BaseModel)

_MESSAGES = {
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "missing": "is required but missing",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping of keys to values",
    "model_type": "must be a mapping of keys to values",
    "model_attributes_type": "must be a mapping of keys to values",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
    "string_too_short": "must not be empty",
    "finite_number": "must be a finite number",
}


def _format_loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _clean_loc(loc: tuple[Any, ...], data: Any) -> tuple[Any, ...]:
    """Drop the discriminator tags pydantic inserts into union locations (e.g. 'softmax')."""
    cleaned: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict):
            if part in node:
                cleaned.append(part)
                node = node[part]
                continue
            if isinstance(part, str) and node.get("type") == part:
                continue  # union tag
            cleaned.append(part)
            node = None
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            cleaned.append(part)
            node = node[part]
        else:
            cleaned.append(part)
            node = None
    return tuple(cleaned)


def _num(v: Any) -> Any:
    """1.0 -> 1 so bounds read as written in the schema."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


def _describe_error(err: dict[str, Any]) -> str:
    etype = err["type"]
    ctx = err.get("ctx") or {}
    given = err.get("input")
    if etype == "extra_forbidden":
        return "unknown key; remove it or check its spelling"
    if etype == "union_tag_invalid":
        return (
            f"unknown type {ctx.get('tag')!r}; expected one of {ctx.get('expected_tags')}"
        )
    if etype == "union_tag_not_found":
        return f"needs a 'type' key (one of {ctx.get('discriminator', 'the known types')})"
    if etype in ("literal_error", "enum"):
        return f"must be one of {ctx.get('expected')}, got {given!r}"
    if etype == "value_error":
        return str(ctx.get("error", err["msg"]))
    template = _MESSAGES.get(etype)
    nice = {k: _num(v) for k, v in ctx.items()}
    msg = template.format(**nice) if template else err["msg"]
    if etype != "missing" and not isinstance(given, (dict, list)):
        msg += f", got {given!r}"
    return msg


def _yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the deepest YAML node along ``loc`` (or None)."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if 0 <= part < len(node.value) else None
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def parse_config(data: Any, model: type[M], source: str = "<config>", root: Any = None) -> M:
    """Validate already-loaded ``data`` against ``model``; raise :class:`ConfigError` on failure.

    ``root`` is the composed YAML node tree, used to add line numbers to messages.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the file must contain a mapping of keys to values at the top level,"
            f" found {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors(include_url=False):
            loc = _clean_loc(tuple(err["loc"]), data)
            line = _yaml_line(root, loc) if root is not None else None
            where = f"{source}:{line}" if line else source
            lines.append(f"{where}: {_format_loc(loc)}: {_describe_error(err)}")
        raise ConfigError("\n".join(lines)) from None


def load_config(path: str | os.PathLike[str], model: type[M]) -> M:
    """Read a YAML file and validate it against ``model``; every failure is a ConfigError."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{p}: file not found; check the path")
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder; pass a YAML file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the file ({exc})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{p}:{mark.line + 1}" if mark is not None else str(p)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{p}: the file is empty; see scenarios/quickstart.yaml for an example")
    return parse_config(data, model, source=str(p), root=root)


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate a scenario YAML file."""
    return load_config(path, Scenario)


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files (for editors: ``adsim schema > scenario.schema.json``)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "adsim scenario"
    return schema
