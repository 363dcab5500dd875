"""FieldEmbedding (fused table, index_select lookup, field dropout) and DeepFM options."""

from __future__ import annotations

import torch

from adsim.models.layers import FieldEmbedding
from adsim.models.schema import ModelSchema, SparseField
from adsim.models.zoo import build_model

SCHEMA = ModelSchema(dense=("a", "b"), sparse=(SparseField("s", 7), SparseField("t", 5)), tasks=("click", "buy"))


def test_field_embedding_matches_per_field_tables() -> None:
    torch.manual_seed(0)
    emb = FieldEmbedding(SCHEMA, 3)
    ids = torch.tensor([[0, 4], [6, 0], [3, 2]])
    out = emb(ids)
    w = emb.table.weight
    assert torch.equal(out[:, 0], w[ids[:, 0]]) and torch.equal(out[:, 1], w[7 + ids[:, 1]])
    # gradient equals nn.Embedding's
    g = torch.randn_like(out)
    out.backward(g)
    w_ref = w.detach().clone().requires_grad_()
    torch.nn.functional.embedding(ids + torch.tensor([0, 7]), w_ref).backward(g)
    torch.testing.assert_close(w.grad, w_ref.grad)


def test_field_dropout_only_in_training() -> None:
    torch.manual_seed(0)
    emb = FieldEmbedding(SCHEMA, 4, dropout=0.5)
    ids = torch.zeros((2000, 2), dtype=torch.long)
    emb.train()
    out = emb(ids)
    zero_fields = (out.abs().sum(-1) == 0).float().mean()
    assert 0.45 < zero_fields < 0.55
    emb.eval()
    assert torch.equal(emb(ids), emb.table.weight[torch.tensor([0, 7])].expand(2000, 2, 4))


def test_deepfm_multitask_and_dense_fields() -> None:
    batch = {"dense": torch.randn(8, 2), "sparse": torch.randint(0, 5, (8, 2))}
    for opts in ({}, {"dense_fields": True, "embed_dropout": 0.1}):
        model = build_model("deepfm", SCHEMA, embed_dim=4, hidden=(8,), **opts)
        assert model(batch).shape == (8, 2)
