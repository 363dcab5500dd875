"""Reward models and K-fold cross-fitting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from adsim.estimators.reward_models import cross_fit_predict, log_features, make_reward_model


def _data(n=600, k=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    a = rng.integers(0, k, n)
    p = 1 / (1 + np.exp(-(x[:, 0] * (a - 1) - 1)))
    r = (rng.random(n) < p).astype(float)
    return x, a, r, k


@pytest.mark.parametrize("kind", ["mean", "logistic", "gbm"])
def test_cross_fit_is_out_of_fold(kind):
    """Changing row i's reward never changes q̂(x_i, ·): it was predicted by a model not fit on it."""
    x, a, r, k = _data()
    kwargs = {}
    q1 = cross_fit_predict(kind, x, a, r, k, n_folds=3, random_state=1, **kwargs)
    r2 = r.copy()
    r2[5] = 1 - r2[5]
    q2 = cross_fit_predict(kind, x, a, r2, k, n_folds=3, random_state=1, **kwargs)
    assert q1.shape == (600, k)
    assert np.array_equal(q1[5], q2[5])
    assert not np.array_equal(q1, q2)


def test_models_learn_something():
    x, a, r, k = _data(n=3000)
    truth = 1 / (1 + np.exp(-(x[:, [0]] * (np.arange(k) - 1) - 1)))
    mean_err = np.abs(cross_fit_predict("mean", x, a, r, k) - truth).mean()
    for kind in ("logistic", "gbm"):
        err = np.abs(cross_fit_predict(kind, x, a, r, k) - truth).mean()
        assert err < 0.7 * mean_err, kind


def test_not_fitted_errors():
    for kind in ("logistic", "gbm", "mean"):
        with pytest.raises(RuntimeError, match="not fitted"):
            make_reward_model(kind).predict(np.zeros((2, 1)))


def test_log_features_encodes_and_drops():
    df = pd.DataFrame({"user_id": [1, 2, 3], "x0": [0.1, 0.2, 0.3], "region": [0, 2, 2],
                       "pi_0": [1.0, 1.0, 1.0]})
    f = log_features(df, 3)
    assert f.shape == (3, 1 + 2)  # x0 + one-hot(region: 2 values)
    assert log_features(None, 4).shape == (4, 0)
