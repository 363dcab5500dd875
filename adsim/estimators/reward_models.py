"""Reward models q̂(x, a) for the direct method (DM) and doubly robust (DR) estimators.

:class:`LogisticRewardModel` fits one L2-regularised logistic regression per action (scikit-learn)
on the rows where that action was logged, predicting P(reward > 0 | x, a), and multiplies by the
action's mean positive reward (so it covers both click and value × click rewards). Actions with
too few rows or a single class fall back to their empirical mean reward.
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from adsim.env.features import Contexts, as_features

__all__ = ["LogisticRewardModel"]


class LogisticRewardModel:
    """Per-action logistic regression reward model (scikit-learn style).

    Args:
        C: inverse L2 regularisation strength of each logistic regression.
        max_iter: solver iterations.
    """

    def __init__(self, C: float = 1.0, max_iter: int = 500) -> None:
        self.C = C
        self.max_iter = max_iter

    def fit(
        self, contexts: Contexts | np.ndarray, actions: np.ndarray, rewards: np.ndarray,
        n_actions: int,
    ) -> LogisticRewardModel:
        x = as_features(contexts)
        actions = np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        self.n_actions_ = int(n_actions)
        self.models_: list[LogisticRegression | None] = []
        self.fallback_ = np.zeros(n_actions)
        self.scale_ = np.ones(n_actions)
        overall = float(np.mean(rewards > 0)) if rewards.size else 0.0
        for a in range(n_actions):
            mask = actions == a
            y = rewards[mask] > 0
            pos = rewards[mask][y]
            self.scale_[a] = float(pos.mean()) if pos.size else 1.0
            self.fallback_[a] = float(y.mean()) if mask.any() else overall
            if mask.sum() >= 10 and 0 < y.sum() < mask.sum():
                m = LogisticRegression(C=self.C, max_iter=self.max_iter)
                m.fit(x[mask], y)
                self.models_.append(m)
            else:
                self.models_.append(None)
        return self

    def _check(self) -> None:
        if not hasattr(self, "models_"):
            raise RuntimeError("LogisticRewardModel is not fitted yet; call fit() first")

    def predict_proba(self, contexts: Contexts | np.ndarray) -> np.ndarray:
        """``(n, K)`` estimated P(reward > 0 | x, a)."""
        self._check()
        x = as_features(contexts)
        out = np.empty((x.shape[0], self.n_actions_))
        for a, m in enumerate(self.models_):
            out[:, a] = m.predict_proba(x)[:, 1] if m is not None else self.fallback_[a]
        return out

    def predict(self, contexts: Contexts | np.ndarray) -> np.ndarray:
        """``(n, K)`` estimated expected reward q̂(x, a)."""
        return self.predict_proba(contexts) * self.scale_

    def scores(self, contexts: Contexts | np.ndarray) -> np.ndarray:
        """``(n, K)`` log q̂(x, a) (lets the model act as a policy's scorer)."""
        return np.log(np.clip(self.predict(contexts), 1e-300, None))
