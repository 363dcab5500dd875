"""Build bandit policies from scenario config.

``fitted`` models and Thompson sampling learn from a *training* log that is separate from the log
used for evaluation, so offline estimates are not biased by re-using the same rounds.
"""

from __future__ import annotations

import numpy as np

from adsim.config import (
    EpsilonGreedyPolicyConfig,
    PolicyConfig,
    SoftmaxPolicyConfig,
    ThompsonPolicyConfig,
    UniformPolicyConfig,
)
from adsim.env.features import Contexts
from adsim.env.logs import BanditLog
from adsim.env.world import World
from adsim.estimators.reward_models import LogisticRewardModel
from adsim.errors import ConfigError
from adsim.policies.base import BanditPolicy, Scorer
from adsim.policies.bandits import (
    EpsilonGreedyPolicy,
    LogisticThompsonPolicy,
    SoftmaxPolicy,
    UniformPolicy,
)

__all__ = ["PolicyBuilder", "policy_label"]


def policy_label(cfg: PolicyConfig) -> str:
    """The name shown on the leaderboard."""
    return cfg.name or cfg.type


class PolicyBuilder:
    """Builds policies for one world, sharing one fitted CTR model among 'fitted' policies.

    Args:
        world: the world the policies act in.
        rng: generator for model noise and Thompson-sampling seeds.
        train_log: training log (needed by 'fitted' models and Thompson sampling).
    """

    def __init__(
        self, world: World, rng: np.random.Generator, train_log: BanditLog | None = None
    ) -> None:
        self.world = world
        self.rng = rng
        self.train_log = train_log
        self._fitted: LogisticRewardModel | None = None

    def _train_contexts(self, what: str) -> tuple[Contexts, BanditLog]:
        if self.train_log is None or self.train_log.context is None:
            raise ConfigError(f"{what} needs a training log; it cannot be the logging policy")
        return Contexts.from_frame(self.train_log.context, self.world.spec), self.train_log

    def fitted_model(self) -> LogisticRewardModel:
        """Per-ad logistic regression fitted on the training log (fitted once, then shared)."""
        if self._fitted is None:
            ctx, log = self._train_contexts("model: fitted")
            self._fitted = LogisticRewardModel().fit(ctx, log.action, log.reward, log.n_actions)
        return self._fitted

    def _scorer(self, model: str, noise: float) -> Scorer:
        if model == "truth":
            return self.world.scorer()
        if model == "noisy_truth":
            return self.world.scorer(self.world.truth.perturbed(noise, self.rng))
        return self.fitted_model()

    def build(self, cfg: PolicyConfig) -> BanditPolicy:
        k = self.world.n_actions
        if isinstance(cfg, UniformPolicyConfig):
            policy: BanditPolicy = UniformPolicy(k)
        elif isinstance(cfg, EpsilonGreedyPolicyConfig):
            policy = EpsilonGreedyPolicy(self._scorer(cfg.model, cfg.model_noise), k, cfg.epsilon)
        elif isinstance(cfg, SoftmaxPolicyConfig):
            policy = SoftmaxPolicy(self._scorer(cfg.model, cfg.model_noise), k, cfg.temperature)
        elif isinstance(cfg, ThompsonPolicyConfig):
            ctx, log = self._train_contexts("a thompson policy")
            policy = LogisticThompsonPolicy(
                k, self.world.spec.design_dim, cfg.prior_precision, cfg.n_samples,
                seed=int(self.rng.integers(2**63 - 1)),
            )
            policy.update(ctx, log.action, log.reward)
        else:  # pragma: no cover - the schema admits no other type
            raise ConfigError(f"unknown policy type {cfg.type!r}")
        policy.name = policy_label(cfg)
        return policy
