"""Reward models q̂(x, a) for the direct method (DM) and doubly robust (DR) estimators.

Models follow scikit-learn's habits (``fit`` returns self, learned state ends in ``_``) and all
predict ``(n, K)``. :func:`cross_fit_predict` gives out-of-fold predictions (K-fold cross-fitting),
:func:`log_features` a design matrix from a user's log table.

:class:`LogisticRewardModel` fits one L2-regularised logistic regression per action (scikit-learn)
on the rows where that action was logged, predicting P(reward > 0 | x, a), and multiplies by the
action's mean positive reward (so it covers both click and value × click rewards). Actions with
too few rows or a single class fall back to their empirical mean reward.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from adsim.env.features import Contexts, as_features

__all__ = [
    "LogisticRewardModel",
    "GradientBoostingRewardModel",
    "MeanRewardModel",
    "REWARD_MODELS",
    "make_reward_model",
    "cross_fit_predict",
    "log_features",
]


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
        from sklearn.linear_model import LogisticRegression

        x = as_features(contexts)
        actions = np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float64)
        self.n_actions_ = int(n_actions)
        self.models_: list = []
        self.fallback_ = np.zeros(n_actions)
        self.scale_ = np.ones(n_actions)
        overall = float(np.mean(rewards > 0)) if rewards.size else 0.0
        for a in range(n_actions):
            mask = actions == a
            y = rewards[mask] > 0
            pos = rewards[mask][y]
            self.scale_[a] = float(pos.mean()) if pos.size else 1.0
            self.fallback_[a] = float(y.mean()) if mask.any() else overall
            if x.shape[1] > 0 and mask.sum() >= 10 and 0 < y.sum() < mask.sum():
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


class MeanRewardModel:
    """q̂(x, a) = mean reward of action a in the training rows (overall mean if never logged)."""

    def fit(self, contexts: Contexts | np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            n_actions: int) -> MeanRewardModel:
        actions = np.asarray(actions, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        counts = np.bincount(actions, minlength=n_actions)
        sums = np.bincount(actions, weights=rewards, minlength=n_actions)
        overall = float(rewards.mean()) if rewards.size else 0.0
        self.means_ = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
        return self

    def predict(self, contexts: Contexts | np.ndarray) -> np.ndarray:
        if not hasattr(self, "means_"):
            raise RuntimeError("MeanRewardModel is not fitted yet; call fit() first")
        return np.tile(self.means_, (len(contexts), 1))


class GradientBoostingRewardModel:
    """One scikit-learn histogram gradient-boosting model on ``[x, one_hot(a)]``.

    Binary rewards use ``HistGradientBoostingClassifier`` (q̂ = P(r = 1 | x, a)); other rewards
    ``HistGradientBoostingRegressor`` (squared error). Predictions for all K actions are made by
    scoring each context once per action (Friedman 2001, "Greedy function approximation: a
    gradient boosting machine"; Ke et al. 2017, LightGBM-style histograms in scikit-learn).

    Args:
        max_iter: boosting rounds.
        learning_rate: shrinkage.
        max_leaf_nodes: tree size.
        random_state: seed of scikit-learn's internal randomness.
        n_threads: OpenMP threads for fitting and prediction (None = all cores; 1 by default,
            which is deterministic and avoids oversubscription when several jobs share a machine).
    """

    def __init__(self, max_iter: int = 100, learning_rate: float = 0.05, max_leaf_nodes: int = 8,
                 random_state: int = 0, n_threads: int | None = 1) -> None:
        self.n_threads = n_threads
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.random_state = random_state

    @staticmethod
    def _design(x: np.ndarray, actions: np.ndarray, n_actions: int) -> np.ndarray:
        onehot = np.zeros((x.shape[0], n_actions))
        onehot[np.arange(x.shape[0]), actions] = 1.0
        return np.hstack([x, onehot])

    def fit(self, contexts: Contexts | np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            n_actions: int) -> GradientBoostingRewardModel:
        from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

        x = as_features(contexts)
        actions = np.asarray(actions, dtype=np.int64)
        rewards = np.asarray(rewards, dtype=np.float64)
        self.n_actions_ = int(n_actions)
        self.binary_ = bool(np.isin(rewards, (0.0, 1.0)).all())
        kw = dict(max_iter=self.max_iter, learning_rate=self.learning_rate,
                  max_leaf_nodes=self.max_leaf_nodes, random_state=self.random_state,
                  early_stopping=False)
        design = self._design(x, actions, n_actions)
        self.constant_: float | None = None
        from threadpoolctl import threadpool_limits

        if self.binary_ and np.unique(rewards).size < 2:
            self.constant_ = float(rewards[0]) if rewards.size else 0.0
            return self
        model = HistGradientBoostingClassifier(**kw) if self.binary_ else (
            HistGradientBoostingRegressor(**kw))
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self.model_ = model.fit(design, rewards.astype(int) if self.binary_ else rewards)
        return self

    def predict(self, contexts: Contexts | np.ndarray) -> np.ndarray:
        if not hasattr(self, "binary_"):
            raise RuntimeError("GradientBoostingRewardModel is not fitted yet; call fit() first")
        x = as_features(contexts)
        n, k = x.shape[0], self.n_actions_
        if self.constant_ is not None:
            return np.full((n, k), self.constant_)
        from threadpoolctl import threadpool_limits

        design = self._design(np.repeat(x, k, axis=0), np.tile(np.arange(k), n), k)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            if self.binary_:
                out = self.model_.predict_proba(design)[:, 1]
            else:
                out = self.model_.predict(design)
        return out.reshape(n, k)


REWARD_MODELS = {
    "logistic": LogisticRewardModel,
    "gbm": GradientBoostingRewardModel,
    "mean": MeanRewardModel,
}


def make_reward_model(kind: str, **kwargs: float) -> LogisticRewardModel | GradientBoostingRewardModel | MeanRewardModel:
    """A reward model by name: ``logistic``, ``gbm`` or ``mean``."""
    try:
        return REWARD_MODELS[kind](**kwargs)  # type: ignore[abstract]
    except KeyError:
        raise ValueError(f"unknown reward model {kind!r}; choose from {sorted(REWARD_MODELS)}") from None


def cross_fit_predict(
    kind: str,
    features: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    n_actions: int,
    n_folds: int = 5,
    random_state: int = 0,
) -> np.ndarray:
    """Out-of-fold predictions q̂(x_i, ·) ``(n, K)`` by K-fold cross-fitting.

    Rows are split at random into ``n_folds`` folds; each fold is predicted by a model fitted on
    the other folds, so q̂(x_i, ·) never depends on (a_i, r_i). This keeps DR's correction term
    mean-zero given q̂ without restricting the model class (Chernozhukov et al. 2018,
    "Double/debiased machine learning", Econometrics Journal). ``n_folds=1`` fits and predicts on
    all rows (no cross-fitting).
    """
    n = features.shape[0]
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if n_folds == 1:
        return make_reward_model(kind).fit(features, actions, rewards, n_actions).predict(features)
    if n < n_folds:
        raise ValueError(f"cross-fitting needs at least n_folds={n_folds} rows, got {n}")
    fold = np.random.default_rng(random_state).permutation(n) % n_folds
    out = np.empty((n, n_actions))
    for f in range(n_folds):
        test = fold == f
        train = ~test
        model = make_reward_model(kind).fit(features[train], actions[train], rewards[train],
                                            n_actions)
        out[test] = model.predict(features[test])
    return out


def log_features(context: pd.DataFrame | None, n_rows: int, max_categories: int = 64) -> np.ndarray:
    """A float design matrix from a log's context table.

    Float columns are used as they are; integer, boolean and text columns with at most
    ``max_categories`` distinct values are one-hot encoded; identifier columns (``user_id``,
    ``slate_id``, ``pi_*``) and other high-cardinality non-float columns are dropped.
    """
    if context is None or context.shape[1] == 0:
        return np.zeros((n_rows, 0))
    parts = []
    for col in context.columns:
        s = context[col]
        name = str(col)
        if name in ("user_id", "slate_id") or name.startswith("pi_"):
            continue
        if pd.api.types.is_float_dtype(s):
            parts.append(s.to_numpy(np.float64)[:, None])
        elif s.nunique(dropna=False) <= max_categories:
            codes = pd.Categorical(s).codes
            onehot = np.zeros((n_rows, int(codes.max()) + 2))
            onehot[np.arange(n_rows), codes + 1] = 1.0
            parts.append(onehot[:, 1:])
    return np.hstack(parts) if parts else np.zeros((n_rows, 0))
