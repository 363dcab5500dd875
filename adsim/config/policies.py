"""Scenario sections for policies: bandit policies (``logging_policy``, ``candidates``) and bidding
policies with the bidding leaderboard / RL training (``bidding``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    field_validator,
)


from adsim.config.base import MAX_MONEY, Label, StrictModel, unique_candidate_names

__all__ = [
    "ModelChoice",
    "UniformPolicyConfig",
    "EpsilonGreedyPolicyConfig",
    "SoftmaxPolicyConfig",
    "ThompsonPolicyConfig",
    "LinUCBPolicyConfig",
    "LinearThompsonPolicyConfig",
    "EnsembleThompsonPolicyConfig",
    "OnlineGreedyPolicyConfig",
    "LEARNING_POLICY_CONFIGS",
    "TruthfulBidderPolicyConfig",
    "ConstantPacingPolicyConfig",
    "DualPacingPolicyConfig",
    "PIDPacingPolicyConfig",
    "ShadedPacingPolicyConfig",
    "CPAPacingPolicyConfig",
    "TSLagrangianPolicyConfig",
    "RLPolicyConfig",
    "BidderPolicyConfig",
    "RLTrainConfig",
    "BiddingConfig",
    "PolicyConfig",
]


# ------------------------------------------------------------------------------------ policies
ModelChoice = Literal["fitted", "noisy_truth", "truth"]


class _PolicyBase(StrictModel):
    name: Label | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


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
    prior_precision: float = Field(default=1.0, gt=0.0, le=1e9, description="Gaussian prior precision λ.")
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
    prior_precision: float = Field(default=1.0, gt=0.0, le=1e9, description="Gaussian prior precision.")


LEARNING_POLICY_CONFIGS: tuple[type[StrictModel], ...] = (
    LinUCBPolicyConfig, LinearThompsonPolicyConfig, EnsembleThompsonPolicyConfig,
    OnlineGreedyPolicyConfig,
)  # bandit types that learn from the training log (cannot be the logging policy)


class _BidderBase(StrictModel):
    name: Label | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


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
    target_cpa: float = Field(gt=0.0, le=MAX_MONEY, description="Target cost per conversion T.")
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Budget step size η.")
    cpa_step_size: float = Field(default=2.0, gt=0.0, le=100.0, description="CPA step size η_μ.")
    lambda0: float = Field(default=1.0, ge=0.0, le=1e4, description="Initial λ.")


class TSLagrangianPolicyConfig(_BidderBase):
    """Thompson-sampled CTR (Bayesian logistic, Laplace) feeding dual pacing, learning online."""

    type: Literal["ts_lagrangian"]
    step_size: float = Field(default=0.5, gt=0.0, le=100.0, description="Dual step size η.")
    lambda0: float = Field(default=1.0, ge=0.0, le=1e4, description="Initial λ.")
    prior_precision: float = Field(default=1.0, gt=0.0, le=1e9, description="Gaussian prior precision.")
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
        return unique_candidate_names(v)


# ====================================================== end of policies and bidding (issue 5) ==

PolicyConfig = Annotated[
    Union[
        UniformPolicyConfig, EpsilonGreedyPolicyConfig, SoftmaxPolicyConfig, ThompsonPolicyConfig,
        LinUCBPolicyConfig, LinearThompsonPolicyConfig, EnsembleThompsonPolicyConfig,
        OnlineGreedyPolicyConfig,
    ],
    Field(discriminator="type"),
]
