"""Contextual-bandit policies, batched.

- :class:`UniformPolicy` — π(a|x) = 1/K.
- :class:`EpsilonGreedyPolicy` — π(a|x) = (1-ε)·1[a = argmax_b s(x,b)] + ε/K.
- :class:`SoftmaxPolicy` — π(a|x) ∝ exp(s(x,a)/τ).
- :class:`LogisticThompsonPolicy` — Thompson sampling with a per-ad Bayesian logistic regression
  and a Laplace (Gaussian) posterior, as in Chapelle & Li (2011), "An Empirical Evaluation of
  Thompson Sampling", NeurIPS. Its action distribution P(a = argmax_b x·θ_b), θ ~ posterior, is
  computed from ``n_samples`` fixed posterior draws, and ``sample`` samples that same distribution.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.special import expit, softmax

from adsim.env.features import Contexts, as_features
from adsim.policies.base import BanditPolicy, Scorer

__all__ = [
    "UniformPolicy",
    "EpsilonGreedyPolicy",
    "SoftmaxPolicy",
    "LogisticThompsonPolicy",
    "greedy_dist",
]


def greedy_dist(scores: np.ndarray) -> np.ndarray:
    """One-hot ``(n, K)`` on the argmax of each row (first index on ties)."""
    out = np.zeros_like(scores, dtype=np.float64)
    out[np.arange(scores.shape[0]), np.argmax(scores, axis=1)] = 1.0
    return out


class UniformPolicy(BanditPolicy):
    name = "uniform"

    def action_dist(self, contexts: Contexts) -> np.ndarray:
        return np.full((len(contexts), self.n_actions), 1.0 / self.n_actions)


class EpsilonGreedyPolicy(BanditPolicy):
    """ε-greedy over a scorer's scores (log estimated expected reward)."""

    name = "epsilon_greedy"

    def __init__(self, scorer: Scorer, n_actions: int, epsilon: float = 0.1) -> None:
        super().__init__(n_actions)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must be in [0, 1], got {epsilon}")
        self.scorer = scorer
        self.epsilon = float(epsilon)

    def action_dist(self, contexts: Contexts) -> np.ndarray:
        dist = greedy_dist(self.scorer.scores(contexts)) * (1.0 - self.epsilon)
        dist += self.epsilon / self.n_actions
        return dist


class SoftmaxPolicy(BanditPolicy):
    """Softmax (Boltzmann) over a scorer's scores with temperature τ."""

    name = "softmax"

    def __init__(self, scorer: Scorer, n_actions: int, temperature: float = 1.0) -> None:
        super().__init__(n_actions)
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.scorer = scorer
        self.temperature = float(temperature)

    def action_dist(self, contexts: Contexts) -> np.ndarray:
        return softmax(self.scorer.scores(contexts) / self.temperature, axis=1)


def _with_intercept(x: np.ndarray) -> np.ndarray:
    return np.hstack([np.ones((x.shape[0], 1)), x])


class LogisticThompsonPolicy(BanditPolicy):
    """Thompson sampling with per-ad Laplace-approximated Bayesian logistic regression.

    For each ad a, the posterior over θ_a (intercept + features) is approximated by
    N(m_a, H_a⁻¹) where m_a is the MAP under the prior N(0, λ⁻¹ I) and
    H_a = λI + Σ_i p_i(1-p_i) x_i x_iᵀ over the rows where a was shown (Chapelle & Li 2011).

    Args:
        n_actions: number of ads.
        prior_precision: λ.
        n_samples: posterior draws used for :meth:`action_dist`.
        seed: seed of those draws (fixed, so the action distribution is a fixed function).
        newton_steps: Newton iterations per :meth:`update` to re-find the MAP.
    """

    name = "thompson"

    def __init__(
        self,
        n_actions: int,
        dim: int,
        prior_precision: float = 1.0,
        n_samples: int = 200,
        seed: int = 0,
        newton_steps: int = 25,
    ) -> None:
        super().__init__(n_actions)
        self.dim = int(dim) + 1
        self.prior_precision = float(prior_precision)
        self.n_samples = int(n_samples)
        self.seed = int(seed)
        self.newton_steps = int(newton_steps)
        self.mean_ = np.zeros((n_actions, self.dim))
        self.precision_ = np.tile(np.eye(self.dim) * self.prior_precision, (n_actions, 1, 1))
        self._x: list[list[np.ndarray]] = [[] for _ in range(n_actions)]
        self._y: list[list[np.ndarray]] = [[] for _ in range(n_actions)]
        self._draws: np.ndarray | None = None

    def update(self, contexts: Contexts, actions: np.ndarray, rewards: np.ndarray) -> None:
        """Add a batch of feedback (rewards > 0 count as clicks) and refit each touched ad."""
        x = _with_intercept(as_features(contexts))
        y = (np.asarray(rewards) > 0).astype(np.float64)
        for a in np.unique(actions):
            mask = actions == a
            self._x[a].append(x[mask])
            self._y[a].append(y[mask])
            self._fit_arm(int(a))
        self._draws = None

    def _fit_arm(self, a: int) -> None:
        x = np.concatenate(self._x[a])
        y = np.concatenate(self._y[a])
        lam = self.prior_precision
        w = self.mean_[a].copy()
        eye = np.eye(self.dim)
        for _ in range(self.newton_steps):
            p = expit(x @ w)
            grad = x.T @ (p - y) + lam * w
            hess = (x * (p * (1 - p))[:, None]).T @ x + lam * eye
            step = cho_solve(cho_factor(hess), grad)
            w -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        p = expit(x @ w)
        self.mean_[a] = w
        self.precision_[a] = (x * (p * (1 - p))[:, None]).T @ x + lam * eye

    def posterior_draws(self, n_samples: int, rng: np.random.Generator) -> np.ndarray:
        """``(n_samples, K, dim)`` draws θ ~ N(m_a, H_a⁻¹): θ = m + L⁻ᵀ z with H = L Lᵀ."""
        z = rng.standard_normal((n_samples, self.n_actions, self.dim))
        out = np.empty_like(z)
        for a in range(self.n_actions):
            chol = np.linalg.cholesky(self.precision_[a])
            out[:, a, :] = self.mean_[a] + solve_triangular(chol.T, z[:, a, :].T, lower=False).T
        return out

    def action_dist(self, contexts: Contexts, chunk: int = 4096) -> np.ndarray:
        if self._draws is None:
            self._draws = self.posterior_draws(self.n_samples, np.random.default_rng(self.seed))
        x = _with_intercept(as_features(contexts))
        n, m = x.shape[0], self.n_samples
        out = np.zeros((n, self.n_actions))
        for start in range(0, n, chunk):
            xs = x[start : start + chunk]
            scores = np.einsum("nd,mkd->nmk", xs, self._draws)  # (n, M, K)
            best = scores.argmax(axis=2)  # (n, M)
            rows = np.repeat(np.arange(xs.shape[0]), m)
            np.add.at(out[start : start + chunk], (rows, best.ravel()), 1.0)
        return out / m
