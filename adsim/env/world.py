"""The world: population × catalogue × ground truth, and the logging loop.

``World.collect(policy, n, rng)`` is the data-generating process of a log: sample n requests,
let the policy choose an ad for each (recording its propensity), draw clicks from the truth. All
of it is vectorised over the batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from adsim.env.catalog import Catalog
from adsim.env.features import Contexts, FeatureSpec
from adsim.env.logs import BanditLog
from adsim.env.population import Population
from adsim.env.truth import ParametricTruth
from adsim.errors import ConfigError

if TYPE_CHECKING:
    from adsim.config import WorldConfig
    from adsim.env.types import BanditPolicy

__all__ = ["World", "TruthScorer", "register_truth_builder"]

#: builders of worlds whose truth is not parametric, by ``world.truth.type`` (filled by the
#: layers above: ``import adsim.worldmodel`` registers ``"trained"``)
_TRUTH_BUILDERS: dict[str, Callable[[WorldConfig, np.random.Generator], World]] = {}


def register_truth_builder(
    truth_type: str, builder: Callable[[WorldConfig, np.random.Generator], World]
) -> None:
    """Let :meth:`World.from_config` build worlds of ``world.truth.type == truth_type``.

    The simulator core knows no trained model; the world-model bridge (:mod:`adsim.worldmodel`,
    which knows both) registers itself here when imported.
    """
    _TRUTH_BUILDERS[truth_type] = builder


@dataclass(frozen=True)
class TruthScorer:
    """Scores ads by log expected reward under a (possibly perturbed) truth."""

    truth: ParametricTruth
    values: np.ndarray | None = None

    def scores(self, contexts: Contexts) -> np.ndarray:
        s = self.truth.scores(contexts)
        if self.values is not None:
            s += np.log(self.values)
        return s


@dataclass
class World:
    """A simulated ad-selection world with known click probabilities.

    Attributes:
        population: the finite user pool requests are drawn from.
        catalog: the ads.
        truth: click model with ``logits``/``ctr`` over a batch of contexts.
        reward: ``"click"`` (reward = click) or ``"value"`` (reward = value_k × click).
    """

    population: Population
    catalog: Catalog
    truth: ParametricTruth
    reward: str = "click"

    @property
    def spec(self) -> FeatureSpec:
        return self.population.spec

    @property
    def n_actions(self) -> int:
        return self.catalog.n_ads

    @classmethod
    def from_config(cls, cfg: WorldConfig, rng: np.random.Generator) -> World:
        if cfg.truth.type != "parametric":  # e.g. a trained network (adsim.worldmodel)
            builder = _TRUTH_BUILDERS.get(cfg.truth.type)
            if builder is None:
                raise ConfigError(
                    f"world.truth.type {cfg.truth.type!r} is built by the world-model bridge:"
                    " `import adsim.worldmodel` first (adsim run does), or build the world with"
                    " adsim.worldmodel.build_world(cfg, rng)"
                )
            return builder(cfg, rng)
        spec = FeatureSpec(
            n_dense=cfg.n_dense,
            sparse_names=tuple(f.name for f in cfg.sparse_fields),
            vocab_sizes=tuple(f.vocab_size for f in cfg.sparse_fields),
        )
        population = Population(spec, cfg.n_users, rng, [f.zipf for f in cfg.sparse_fields])
        catalog = Catalog.random(cfg.n_ads, cfg.n_dense, rng, value_sigma=cfg.value_sigma)
        t = cfg.truth
        truth = ParametricTruth.random(
            spec, catalog, rng, base_ctr=t.base_ctr, effect_scale=t.effect_scale,
            ad_bias_sd=t.ad_bias_sd, sparse_effect_sd=t.sparse_effect_sd,
        )
        return cls(population=population, catalog=catalog, truth=truth, reward=cfg.reward)

    def scorer(self, truth: ParametricTruth | None = None) -> TruthScorer:
        """A scorer ranking ads by expected reward under ``truth`` (default: the world's own)."""
        values = self.catalog.values if self.reward == "value" else None
        return TruthScorer(truth if truth is not None else self.truth, values)

    def expected_reward(self, contexts: Contexts) -> np.ndarray:
        """``(n, K)`` expected reward q(x, a) of showing each ad."""
        q = self.truth.ctr(contexts)
        if self.reward == "value":
            q *= self.catalog.values
        return q

    def sample_contexts(self, n: int, rng: np.random.Generator) -> Contexts:
        return self.population.sample(n, rng)

    def simulate(
        self, contexts: Contexts, actions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw rewards for the chosen ``actions``; returns ``(reward, q_all)``."""
        q_all = self.truth.ctr(contexts)
        rows = np.arange(len(contexts))
        clicks = rng.random(len(contexts)) < q_all[rows, actions]
        reward = clicks.astype(np.float64)
        if self.reward == "value":
            reward *= self.catalog.values[actions]
            q_all *= self.catalog.values
        return reward, q_all

    def collect(
        self,
        policy: BanditPolicy,
        n_rounds: int,
        rng: np.random.Generator,
        batch_size: int = 100_000,
    ) -> BanditLog:
        """Log ``n_rounds`` requests under ``policy`` with its propensities and the true q(x, ·)."""
        parts = []
        for start in range(0, n_rounds, batch_size):
            n = min(batch_size, n_rounds - start)
            ctx = self.sample_contexts(n, rng)
            dist = policy.action_dist(ctx)
            actions = policy.sample_from(dist, rng)
            reward, q_all = self.simulate(ctx, actions, rng)
            pscore = np.minimum(dist[np.arange(n), actions], 1.0)  # float round-off above 1
            parts.append((ctx, actions, reward, pscore, q_all))
        return self.log_from_parts(parts)

    def log_from_parts(self, parts: list[tuple]) -> BanditLog:  # type: ignore[type-arg]
        """One :class:`BanditLog` from batches ``(contexts, actions, rewards, pscores, q_all)``."""
        ctx = Contexts(
            self.spec,
            np.concatenate([p[0].user_id for p in parts]),
            np.concatenate([p[0].dense for p in parts]),
            np.concatenate([p[0].sparse for p in parts]),
        )
        return BanditLog(
            action=np.concatenate([p[1] for p in parts]),
            reward=np.concatenate([p[2] for p in parts]),
            pscore=np.concatenate([p[3] for p in parts]),
            n_actions=self.n_actions,
            context=ctx.to_frame(),
            expected_reward=np.concatenate([p[4] for p in parts]),
        )
