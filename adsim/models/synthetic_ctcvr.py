"""A synthetic CTR/CVR dataset with known truth: conversions only happen after clicks.

Each row is an impression of item i to user u at time t (``n_days`` days, diurnal traffic):

.. math::

    \\operatorname{logit} P(\\text{click}) &= β_0 + a_u \\cdot b_i + β_i + 0.5\\,x_{u0}
        + h \\sin(2π \\,\\text{hour}/24) \\\\
    \\operatorname{logit} P(\\text{conv} \\mid \\text{click}) &= γ_0 + a_u \\cdot c_i + γ_i
        - κ β_i + 0.5\\,x_{u1}

with user factors :math:`a_u` built from the user's categorical fields (age band, city) and
dense features, item factors :math:`b_i, c_i` from the item's category and id, per-item biases
:math:`β_i, γ_i`, and :math:`κ > 0` making "click-bait" items (high β) convert *less* — so the
clicked rows are a biased sample for CVR (sample selection bias, as in ESMM's motivation, Ma et
al. 2018). Item popularity is Zipf-distributed, so many items have few clicks (data sparsity).

Columns: ``user_id, u_age, u_city, u_x0, u_x1, item_id, item_cat, item_price, ts, hour,
click, conversion, p_click, p_cvr, p_ctcvr`` (the last three are the true probabilities; the
Bayes-optimal CTR / CTCVR / CVR predictors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["generate_ctr_cvr", "DENSE", "SPARSE", "LABELS"]

DENSE = ("u_x0", "u_x1", "item_price")
SPARSE = ("u_age", "u_city", "item_id", "item_cat")
LABELS = ("click", "conversion")


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def generate_ctr_cvr(
    n_rows: int, seed: int = 0, *, n_users: int = 20_000, n_items: int = 500, n_cats: int = 20,
    dim: int = 4, base_ctr: float = 0.08, base_cvr: float = 0.15, kappa: float = 1.0,
    hour_effect: float = 0.3, n_days: int = 7, zipf: float = 1.1,
) -> pd.DataFrame:
    """Draw ``n_rows`` impressions (see the module docstring); all from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    # users
    age_emb = rng.normal(0, 0.6, (8, dim))
    city_emb = rng.normal(0, 0.4, (30, dim))
    u_age = rng.integers(0, 8, n_users)
    u_city = np.minimum(rng.zipf(1.5, n_users) - 1, 29)
    u_x = rng.standard_normal((n_users, 2))
    a_u = age_emb[u_age] + city_emb[u_city] + 0.3 * u_x[:, :1]  # (U, dim)
    # items
    cat_b = rng.normal(0, 0.6, (n_cats, dim))
    cat_c = rng.normal(0, 0.6, (n_cats, dim))
    item_cat = rng.integers(0, n_cats, n_items)
    b_i = cat_b[item_cat] + rng.normal(0, 0.3, (n_items, dim))
    c_i = cat_c[item_cat] + rng.normal(0, 0.3, (n_items, dim))
    beta_i = rng.normal(0, 0.7, n_items)
    gamma_i = rng.normal(0, 0.5, n_items)
    price = np.exp(rng.normal(3.0, 0.8, n_items))
    pop = np.arange(1, n_items + 1, dtype=np.float64) ** (-zipf)
    pop = pop[rng.permutation(n_items)]
    pop /= pop.sum()
    # impressions
    u = rng.integers(0, n_users, n_rows)
    i = rng.choice(n_items, size=n_rows, p=pop)
    diurnal = 1.0 + 0.6 * np.sin(2 * np.pi * (np.arange(24) - 9) / 24)
    hour = rng.choice(24, size=n_rows, p=diurnal / diurnal.sum())
    day = rng.integers(0, n_days, n_rows)
    ts = (day * 24 + hour) * 3600 + rng.integers(0, 3600, n_rows)
    logit_ctr = (np.log(base_ctr / (1 - base_ctr)) + np.einsum("nd,nd->n", a_u[u], b_i[i])
                 + beta_i[i] + 0.5 * u_x[u, 0] + hour_effect * np.sin(2 * np.pi * hour / 24))
    logit_cvr = (np.log(base_cvr / (1 - base_cvr)) + np.einsum("nd,nd->n", a_u[u], c_i[i])
                 + gamma_i[i] - kappa * beta_i[i] + 0.5 * u_x[u, 1])
    p_click, p_cvr = _sigmoid(logit_ctr), _sigmoid(logit_cvr)
    click = rng.random(n_rows) < p_click
    conv = click & (rng.random(n_rows) < p_cvr)
    order = np.argsort(ts, kind="stable")
    df = pd.DataFrame({
        "user_id": u, "u_age": u_age[u], "u_city": u_city[u], "u_x0": u_x[u, 0], "u_x1": u_x[u, 1],
        "item_id": i, "item_cat": item_cat[i], "item_price": price[i], "ts": ts, "hour": hour,
        "click": click.astype(np.int64), "conversion": conv.astype(np.int64),
        "p_click": p_click, "p_cvr": p_cvr, "p_ctcvr": p_click * p_cvr,
    })
    return df.iloc[order].reset_index(drop=True)
