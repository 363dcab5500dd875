"""Test helpers for the model zoo: a synthetic dataset with pairwise interactions, a tiny Adam loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from adsim.models.schema import ModelSchema, SparseField


@dataclass
class Synthetic:
    schema: ModelSchema
    dense: np.ndarray  # (n, n_dense) f32
    sparse: np.ndarray  # (n, n_sparse) i64
    logit: np.ndarray  # (n,) true logit
    y: np.ndarray  # (n,) f32 clicks ~ Bernoulli(sigmoid(logit))

    def split(self, n_train: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        a = {"dense": self.dense[:n_train], "sparse": self.sparse[:n_train], "y": self.y[:n_train], "logit": self.logit[:n_train]}
        b = {"dense": self.dense[n_train:], "sparse": self.sparse[n_train:], "y": self.y[n_train:], "logit": self.logit[n_train:]}
        return a, b


def make_interaction_data(
    n: int, rng: np.random.Generator, n_fields: int = 5, vocab: int = 12, rank: int = 3,
    pair_scale: float = 0.6, bias: float = -1.2,
) -> Synthetic:
    """Clicks from ``logit = b + Σ_f w_f[x_f] + Σ_{i<j} <u_i[x_i], u_j[x_j]> + 0.5 x_0 + 0.5 x_0 x_1``.

    The pairwise field×field products make the truth non-additive: logistic regression cannot
    represent it, interaction models can.
    """
    w = rng.normal(0, 0.5, (n_fields, vocab))
    u = rng.normal(0, pair_scale, (n_fields, vocab, rank))
    x = rng.integers(0, vocab, (n, n_fields))
    dense = rng.normal(0, 1, (n, 2)).astype(np.float32)
    e = u[np.arange(n_fields), x]  # (n, F, r)
    s = e.sum(1)
    pair = 0.5 * ((s**2).sum(-1) - (e**2).sum((1, 2)))
    logit = bias + w[np.arange(n_fields), x].sum(1) + pair + 0.5 * dense[:, 0] + 0.5 * dense[:, 0] * dense[:, 1]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    schema = ModelSchema(dense=("d0", "d1"), sparse=tuple(SparseField(f"c{f}", vocab) for f in range(n_fields)))
    return Synthetic(schema, dense, x.astype(np.int64), logit, y)


def to_batch(d: dict[str, np.ndarray]):
    import torch

    return {k: torch.from_numpy(d[k]) for k in ("dense", "sparse", "seq") if k in d}


def fit(model, data: dict[str, np.ndarray], epochs: int = 4, lr: float = 1e-2, batch_size: int = 256, seed: int = 0):
    """A minimal Adam loop (the tests' own; the real trainer is adsim.models.train)."""
    import torch
    import torch.nn.functional as F

    x, y = to_batch(data), torch.from_numpy(data["y"])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), batch_size):
            idx = perm[i : i + batch_size]
            loss = F.binary_cross_entropy_with_logits(model({k: v[idx] for k, v in x.items()}), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model


def predict(model, data: dict[str, np.ndarray]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(to_batch(data)).numpy()
