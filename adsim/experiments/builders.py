"""Build bandit policies from scenario config (a config → object builder of the experiments
layer: it joins the world, a training log and the estimators' reward model).

``fitted`` models and the learning bandits (Thompson sampling, LinUCB, linear TS, the bootstrap
ensemble, online ε-greedy) learn from a *training* log that is separate from the log used for
evaluation, so offline estimates are not biased by re-using the same rounds.

Bidding policies are built by :func:`adsim.policies.factory.make_bidding_policy` (re-exported
here).
"""

from __future__ import annotations

import numpy as np

from adsim.config import (
    BetaThompsonPolicyConfig,
    EnsembleThompsonPolicyConfig,
    EpsilonGreedyPolicyConfig,
    LinearThompsonPolicyConfig,
    LinUCBPolicyConfig,
    OnlineGreedyPolicyConfig,
    PolicyConfig,
    SoftmaxPolicyConfig,
    ThompsonPolicyConfig,
    UniformPolicyConfig,
)
from adsim.env.features import Contexts
from adsim.env.logs import BanditLog
from adsim.env.world import World
from adsim.errors import ConfigError
from adsim.estimators.reward_models import LogisticRewardModel
from adsim.policies.bandits import (
    BetaThompsonPolicy,
    EpsilonGreedyPolicy,
    LinearThompsonPolicy,
    LinUCBPolicy,
    LogisticThompsonPolicy,
    OnlineLogisticScorer,
    SoftmaxPolicy,
    UniformPolicy,
)
from adsim.policies.base import BanditPolicy, Scorer
from adsim.policies.factory import make_bidding_policy

__all__ = ["PolicyBuilder", "policy_label", "make_bidding_policy"]



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
        else:
            policy = self.fresh(cfg, int(self.rng.integers(2**63 - 1)))
            ctx, log = self._train_contexts(f"a {cfg.type} policy")
            policy.update(ctx, log.action, log.reward)
        policy.name = policy_label(cfg)
        return policy

    def fresh(self, cfg: PolicyConfig, seed: int) -> BanditPolicy:
        """The learning bandit ``cfg`` at its prior (nothing learnt yet), seeded by ``seed``.

        ``build`` fits it on the training log (``learn: offline``); the online runner
        (:mod:`adsim.experiments.regret`) lets it learn from the scenario's own traffic.
        """
        k, d = self.world.n_actions, self.world.spec.design_dim
        if isinstance(cfg, ThompsonPolicyConfig):
            refit = "online" if cfg.learn == "online" else "full"  # O(batch) updates online
            policy: BanditPolicy = LogisticThompsonPolicy(
                k, d, cfg.prior_precision, cfg.n_samples, seed=seed, refit=refit
            )
        elif isinstance(cfg, BetaThompsonPolicyConfig):
            policy = BetaThompsonPolicy(k, cfg.alpha0, cfg.beta0, cfg.n_samples, seed=seed)
        elif isinstance(cfg, LinUCBPolicyConfig):
            policy = LinUCBPolicy(k, d, cfg.alpha, cfg.ridge)
        elif isinstance(cfg, LinearThompsonPolicyConfig):
            policy = LinearThompsonPolicy(k, d, cfg.v, cfg.ridge, seed=seed)
        elif isinstance(cfg, EnsembleThompsonPolicyConfig):
            from adsim.policies.ensemble import EnsembleThompsonPolicy

            policy = EnsembleThompsonPolicy(
                k, d, cfg.n_members, cfg.hidden, cfg.lr, cfg.steps_per_update, cfg.batch_size,
                seed=seed,
            )
        elif isinstance(cfg, OnlineGreedyPolicyConfig):
            scorer = OnlineLogisticScorer(k, d, cfg.prior_precision)
            policy = EpsilonGreedyPolicy(scorer, k, cfg.epsilon)
        else:
            raise ConfigError(
                f"policy type {cfg.type!r} does not learn; learn: online needs thompson,"
                " beta_thompson, linucb, lin_thompson, ensemble_thompson or online_epsilon_greedy"
            )
        policy.name = policy_label(cfg)
        return policy
