"""Scenario sections for policies: bandit policies (``logging_policy``, ``candidates``) and bidding
policies with the bidding leaderboard / RL training (``bidding``)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from adsim.config.base import MAX_MONEY, Label, StrictModel, unique_candidate_names

__all__ = [
    "ModelChoice",
    "UniformPolicyConfig",
    "EpsilonGreedyPolicyConfig",
    "SoftmaxPolicyConfig",
    "ThompsonPolicyConfig",
    "BetaThompsonPolicyConfig",
    "LearnMode",
    "LinUCBPolicyConfig",
    "LinearThompsonPolicyConfig",
    "EnsembleThompsonPolicyConfig",
    "OnlineGreedyPolicyConfig",
    "LEARNING_POLICY_CONFIGS",
    "TruthfulBidderPolicyConfig",
    "ConstantPacingPolicyConfig",
    "FixedBidderPolicyConfig",
    "DualPacingPolicyConfig",
    "PIDPacingPolicyConfig",
    "ShadedPacingPolicyConfig",
    "CPAPacingPolicyConfig",
    "TSLagrangianPolicyConfig",
    "RL_ALGOS",
    "RL_DISCRETE_ALGOS",
    "RLPolicyConfig",
    "RLBanditPolicyConfig",
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


LearnMode = Literal["offline", "online"]


class _LearningPolicyBase(_PolicyBase):
    """A bandit that learns: from the training log (``learn: offline``, then frozen) or inside
    the scenario (``learn: online``: from its prior, batch by batch, scored by regret)."""

    learn: LearnMode = Field(
        default="offline",
        description=(
            "offline: fitted once on the training log, then frozen and evaluated;"
            " online: starts from its prior, acts on the scenario's traffic in batches and"
            " updates after each batch (scored by cumulative regret, see evaluation.online_rounds)."
        ),
    )
    online_batch: int | None = Field(
        default=None, ge=1, le=10_000_000,
        description="learn: online only: requests per batch between updates (default:"
        " evaluation.online_batch).",
    )

    @model_validator(mode="after")
    def _batch_needs_online(self) -> _LearningPolicyBase:
        if self.online_batch is not None and self.learn != "online":
            raise ValueError(
                "online_batch applies only to learn: online; add 'learn: online' or remove"
                " online_batch"
            )
        return self


class ThompsonPolicyConfig(_LearningPolicyBase):
    """Logistic Thompson sampling with a Laplace posterior (Chapelle & Li 2011)."""

    type: Literal["thompson"]
    prior_precision: float = Field(default=1.0, gt=0.0, le=1e9, description="Gaussian prior precision λ.")
    n_samples: int = Field(
        default=200, ge=10, le=100_000,
        description="Posterior draws used to compute the action distribution.",
    )


class BetaThompsonPolicyConfig(_LearningPolicyBase):
    """Beta-Bernoulli Thompson sampling: one Beta(α, β) click-rate posterior per ad, no context."""

    type: Literal["beta_thompson"]
    alpha0: float = Field(default=1.0, gt=0.0, le=1e6, description="Prior successes α₀.")
    beta0: float = Field(default=1.0, gt=0.0, le=1e6, description="Prior failures β₀.")
    n_samples: int = Field(
        default=1000, ge=10, le=1_000_000,
        description="Posterior draws used to compute the action distribution (per update).",
    )


# =========================================================== policies and bidding (issue 5) ====
# Learning bandit policies, bidding policies (pacing, shading, CPA, TS + Lagrangian, RL) and the
# bidding leaderboard / RL training sections of a scenario. Built by adsim.policies.factory /
# adsim.experiments.builders, used by
# adsim.policies.bidding, adsim.policies.rl and adsim.experiments.bidding.


class LinUCBPolicyConfig(_LearningPolicyBase):
    """Disjoint LinUCB (Li et al. 2010): argmax_a x·θ̂_a + α·sqrt(xᵀA_a⁻¹x), ridge per ad."""

    type: Literal["linucb"]
    alpha: float = Field(default=1.0, ge=0.0, le=100.0, description="Width α of the bonus.")
    ridge: float = Field(default=1.0, gt=0.0, le=1e6, description="Ridge prior precision λ.")


class LinearThompsonPolicyConfig(_LearningPolicyBase):
    """Linear Thompson sampling (Agrawal & Goyal 2013): θ̃_a ~ N(θ̂_a, v²A_a⁻¹)."""

    type: Literal["lin_thompson"]
    v: float = Field(default=0.25, gt=0.0, le=100.0, description="Posterior scale v.")
    ridge: float = Field(default=1.0, gt=0.0, le=1e6, description="Ridge prior precision λ.")


class EnsembleThompsonPolicyConfig(_LearningPolicyBase):
    """Thompson sampling by a bootstrap ensemble of small CTR networks (Osband et al. 2016)."""

    type: Literal["ensemble_thompson"]
    n_members: int = Field(default=10, ge=2, le=256, description="Ensemble members M.")
    hidden: int = Field(default=32, ge=1, le=4096, description="Hidden units of each member.")
    lr: float = Field(default=0.01, gt=0.0, le=1.0, description="Adam learning rate.")
    steps_per_update: int = Field(
        default=50, ge=1, le=100_000, description="Gradient steps after each batch of feedback."
    )
    batch_size: int = Field(default=512, ge=8, le=1_000_000, description="Minibatch size.")


class OnlineGreedyPolicyConfig(_LearningPolicyBase):
    """ε-greedy over an online Laplace logistic model (the learning baseline for Thompson)."""

    type: Literal["online_epsilon_greedy"]
    epsilon: float = Field(default=0.1, ge=0.0, le=1.0, description="Exploration probability ε.")
    prior_precision: float = Field(default=1.0, gt=0.0, le=1e9, description="Gaussian prior precision.")


LEARNING_POLICY_CONFIGS: tuple[type[StrictModel], ...] = (
    BetaThompsonPolicyConfig, LinUCBPolicyConfig, LinearThompsonPolicyConfig,
    EnsembleThompsonPolicyConfig, OnlineGreedyPolicyConfig,
)  # bandit types that learn from the training log (cannot be the logging policy)


class _BidderBase(StrictModel):
    name: Label | None = Field(default=None, min_length=1, description="Label on the leaderboard.")


class TruthfulBidderPolicyConfig(_BidderBase):
    """bid = scale × value (value = value per click × pCTR [× pCVR] in bid units)."""

    type: Literal["truthful"]
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Multiplier on value.")


class ConstantPacingPolicyConfig(_BidderBase):
    """Truthful bids (× ``scale``), spending capped at budget / n_steps per step (naive even
    pacing that ignores the daily traffic curve)."""

    type: Literal["constant_pacing"]
    scale: float = Field(default=1.0, gt=0.0, le=100.0, description="Multiplier on value.")


class FixedBidderPolicyConfig(_BidderBase):
    """The same ``amount`` on every eligible request."""

    type: Literal["fixed"]
    amount: float = Field(default=1.0, ge=0.0, le=MAX_MONEY, description="The bid.")


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


RL_ALGOS = ("a2c", "ddpg", "dqn", "ppo", "sac", "td3")  # stable-baselines3's algorithms
RL_DISCRETE_ALGOS = ("a2c", "dqn", "ppo")  # those that act on a Discrete space (bandit envs)


class _RLBase(StrictModel):
    """A stable-baselines3 agent declared in the scenario: trained by ``adsim run`` on the
    scenario's Gymnasium env for ``steps`` env steps (cached), or loaded from ``model``."""

    name: str | None = Field(default=None, min_length=1, description="Label on the leaderboard.")
    type: Literal["rl"]
    algo: str = Field(
        default="ppo", description="SB3 algorithm by name: " + ", ".join(RL_ALGOS) + "."
    )
    steps: int = Field(
        default=50_000, ge=1, le=100_000_000, description="Environment steps to train for."
    )
    model: str | None = Field(
        default=None, min_length=1,
        description="A pre-trained agent (.pt written by adsim train-rl) instead of training.",
    )
    seed: int | None = Field(
        default=None, ge=0, le=2**32 - 1, description="Training seed (default: the scenario's)."
    )
    n_envs: int = Field(
        default=8, ge=1, le=256, description="Copies of the env stepped together (vectorised)."
    )
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Keyword arguments of the SB3 algorithm (learning_rate, n_steps, gamma,"
        " policy_kwargs, …), over adsim's defaults.",
    )

    @field_validator("algo")
    @classmethod
    def _known_algo(cls, v: str) -> str:
        algo = v.strip().lower()
        if algo not in RL_ALGOS:
            raise ValueError(
                f"unknown RL algorithm {v!r}; stable-baselines3 has " + ", ".join(RL_ALGOS)
            )
        return algo


class RLPolicyConfig(_RLBase):
    """An SB3 agent bidding through ``adsim/BudgetBidding-v0``: every decision step it sets the
    dual variable λ of the step (bid = value / (1 + λ)) from the pacing observation."""

    action_type: Literal["scale", "dual", "log_dual", "dual_step"] = Field(
        default="dual_step",
        description="What the action sets (see BudgetBiddingEnv): dual_step changes λ by a"
        " factor each step; log_dual / dual set λ; scale sets the bid multiplier.",
    )
    max_dual: float = Field(default=30.0, gt=0.0, le=1e6, description="Largest λ.")
    max_scale: float = Field(
        default=16.0, gt=1.0, le=1e6, description="action_type scale: bid = value × max_scale^a."
    )
    max_step: float = Field(
        default=0.1, gt=0.0, le=1.0,
        description="dual_step: largest change of log(1+λ) per step, as a share of log(1+max_dual).",
    )
    lambda0: float = Field(default=1.0, ge=0.0, le=1e6, description="dual_step: λ at midnight.")
    n_bins: int = Field(
        default=11, ge=2, le=1001, description="DQN only: discrete actions evenly over [-1, 1]."
    )
    reward: Literal["value", "expected"] = Field(
        default="expected", description="Env reward: realised or expected value of the step."
    )
    eval_days: int = Field(
        default=3, ge=0, le=100,
        description="Days scored as % of the hindsight optimum at each point of the training curve.",
    )


class RLBanditPolicyConfig(_RLBase):
    """An SB3 agent choosing ads in ``adsim/AdSelection-v0`` (one user per step, reward = click);
    its action distribution (PPO/A2C: the categorical policy; DQN: greedy) is scored exactly."""

    episode_length: int = Field(
        default=100, ge=1, le=1_000_000, description="Users per episode (the curve's unit)."
    )

    @field_validator("algo")
    @classmethod
    def _discrete_algo(cls, v: str) -> str:
        if v not in RL_DISCRETE_ALGOS:
            raise ValueError(
                f"{v!r} needs a continuous action; choosing an ad is discrete: use one of "
                + ", ".join(RL_DISCRETE_ALGOS)
            )
        return v


BidderPolicyConfig = Annotated[
    Union[
        TruthfulBidderPolicyConfig, ConstantPacingPolicyConfig, FixedBidderPolicyConfig,
        DualPacingPolicyConfig,
        PIDPacingPolicyConfig, ShadedPacingPolicyConfig, CPAPacingPolicyConfig,
        TSLagrangianPolicyConfig, RLPolicyConfig,
    ],
    Field(discriminator="type"),
]
"""The one bidder vocabulary: a campaign's ``bidder`` (``auction.campaigns[i].bidder``) and a
bidding candidate (``bidding.candidates``) take the same types, built by
:func:`adsim.policies.factory.make_bidding_policy`."""


class RLTrainConfig(StrictModel):
    """``bidding.rl`` (older scenarios): what ``adsim train-rl`` trains when the scenario declares
    no ``type: rl`` candidate. Prefer an RL candidate with ``algo`` and ``steps``."""

    algo: Literal["ppo", "sac", "dqn"] = Field(default="ppo", description="SB3 algorithm.")
    total_timesteps: int = Field(
        default=20_000, ge=1, le=100_000_000, description="Environment steps (decision steps)."
    )
    action_type: Literal["scale", "dual", "log_dual", "dual_step"] = Field(
        default="dual_step", description="What the action sets (see RLPolicyConfig)."
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
        BetaThompsonPolicyConfig, LinUCBPolicyConfig, LinearThompsonPolicyConfig,
        EnsembleThompsonPolicyConfig, OnlineGreedyPolicyConfig, RLBanditPolicyConfig,
    ],
    Field(discriminator="type"),
]
