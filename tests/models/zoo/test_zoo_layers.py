"""FeatureEmbedding: adaptive sizes, hashing, shared tables, pooled sequences, used-row L2."""

from __future__ import annotations

import pytest
import torch

from adsim.errors import ConfigError
from adsim.models.layers import (
    DenseFields,
    EmbeddingConfig,
    FeatureEmbedding,
    adaptive_dim,
    regularization_loss,
)
from adsim.models.schema import ModelSchema, SequenceField, SparseField


@pytest.mark.parametrize(
    ("vocab", "rule", "expected"),
    [
        (2, (6.0, 0.25, 50), 7),  # int(6 · 2^0.25) = int(7.13)
        (10_000, (6.0, 0.25, 50), 50),  # int(6 · 10) = 60 → capped at 50
        (1_000, (6.0, 0.25, 50), 33),  # int(6 · 5.62) = 33
        (1_000, (2.0, 0.5, 100), 63),  # int(2 · 31.6)
        (1, (0.1, 0.25, 50), 1),  # at least 1
        (81, lambda v: v // 10, 8),
    ],
)
def test_adaptive_dim_rule(vocab: int, rule, expected: int) -> None:
    assert adaptive_dim(vocab, rule) == expected


def test_adaptive_sizes_are_projected_to_a_common_dim() -> None:
    schema = ModelSchema(sparse=(SparseField("a", 2), SparseField("b", 1000), SparseField("c", 2)))
    emb = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=12, adaptive_dim=True))
    assert emb.field_dims == [7, 33, 7]
    assert sorted(emb.tables) == ["33", "7"]
    assert emb.tables["7"].weight.shape == (4, 7)  # a and c share one fused size-7 table
    x = torch.tensor([[1, 999, 0], [0, 5, 1]])
    out = emb(x)
    assert out.shape == (2, 3, 12)
    # field b's output is its own 33-d row times its projection (fields stay in schema order)
    expected_b = emb.tables["33"].weight[999] @ emb.proj["33"][0]
    assert torch.allclose(out[0, 1], expected_b, atol=1e-6)
    expected_c = emb.tables["7"].weight[2 + 0] @ emb.proj["7"][1]
    assert torch.allclose(out[0, 2], expected_c, atol=1e-6)


def test_high_cardinality_fields_are_hashed_into_buckets() -> None:
    schema = ModelSchema(sparse=(SparseField("small", 50), SparseField("site", 20_000)))
    emb = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=4, hash_buckets=1_000, hash_threshold=10_000))
    assert emb.tables["4"].weight.shape == (50 + 1_000, 4)
    out = emb(torch.tensor([[3, 7], [3, 1_007], [3, 19_007], [3, 8]]))
    assert torch.equal(out[0, 1], out[1, 1]) and torch.equal(out[0, 1], out[2, 1])  # 7 ≡ 1007 ≡ 19007
    assert not torch.equal(out[0, 1], out[3, 1])
    # below the threshold nothing is hashed
    plain = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=4, hash_buckets=1_000, hash_threshold=50_000))
    assert plain.tables["4"].weight.shape == (20_050, 4)
    # hashing off by default
    assert FeatureEmbedding(schema, EmbeddingConfig(embed_dim=4)).tables["4"].weight.shape == (20_050, 4)


def test_fields_in_a_share_group_use_one_table() -> None:
    schema = ModelSchema(
        sparse=(SparseField("user_id", 30, share="user"), SparseField("ad", 5), SparseField("session_user", 20, share="user")),
        sequences=(SequenceField("ad_history", 5, 4, share=None),),
    )
    emb = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=3))
    assert emb.tables["3"].weight.shape == (30 + 5 + 5, 3)  # shared block sized for the larger vocab
    out = emb(torch.tensor([[11, 2, 11], [4, 2, 19]]), torch.zeros(2, 1, 4, dtype=torch.long))
    assert out.shape == (2, 4, 3)
    assert torch.equal(out[0, 0], out[0, 2])  # same id, same row
    assert not torch.equal(out[1, 0], out[1, 2])


def test_sequence_fields_are_mean_pooled_over_non_padding_ids() -> None:
    schema = ModelSchema(
        sparse=(SparseField("ad", 10, share="ad"),),
        sequences=(SequenceField("clicked", 10, 4, share="ad"),),
    )
    emb = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=5))
    seq = torch.tensor([[[3, 7, 0, 0]], [[0, 0, 0, 0]]])
    out = emb(torch.tensor([[3], [1]]), seq)
    w = emb.tables["5"].weight
    assert torch.allclose(out[0, 1], (w[3] + w[7]) / 2, atol=1e-6)
    assert torch.equal(out[1, 1], torch.zeros(5))  # all padding → zero vector
    assert torch.equal(out[0, 0], w[3])  # shared with the ad field


def test_l2_penalises_only_the_rows_used_in_the_batch() -> None:
    schema = ModelSchema(sparse=(SparseField("a", 6), SparseField("b", 4)))
    emb = FeatureEmbedding(schema, EmbeddingConfig(embed_dim=2, l2_reg=0.5))
    x = torch.tensor([[1, 0], [1, 3], [2, 3]])
    emb(x)
    w = emb.tables["2"].weight
    used = torch.tensor([1, 2, 6 + 0, 6 + 3])  # each distinct row once
    expected = 0.5 * w[used].pow(2).sum()
    reg = regularization_loss(torch.nn.Sequential(emb))
    assert torch.allclose(reg, expected)
    reg.backward()
    touched = (w.grad.abs().sum(1) > 0).nonzero().flatten().tolist()
    assert touched == used.tolist()
    # no penalty in eval mode or when l2_reg = 0
    emb.eval()
    emb(x)
    emb._used = []
    assert regularization_loss(torch.nn.Sequential(emb)).item() == 0.0


def test_dense_fields_scale_one_vector_per_feature() -> None:
    layer = DenseFields(2, 3)
    out = layer(torch.tensor([[2.0, 0.0]]))
    assert torch.allclose(out[0, 0], 2 * layer.weight[0]) and torch.equal(out[0, 1], torch.zeros(3))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"embed_dim": 0}, "embed_dim must be >= 1, got 0"),
        ({"hash_buckets": 1}, "hash_buckets must be >= 2 or null, got 1"),
        ({"hash_threshold": 0}, "hash_threshold must be >= 1, got 0"),
        ({"l2_reg": -0.1}, "l2_reg must be >= 0, got -0.1"),
        ({"embed_dropout": 1.0}, r"embed_dropout must be in \[0, 1\), got 1.0"),
        ({"dim_rule": (0, 0.25, 50)}, r"dim_rule must be \[a, p, cap\] with a > 0"),
        ({"dim_rule": (6, 0.25)}, r"dim_rule must be \[a, p, cap\]"),
    ],
)
def test_invalid_embedding_options(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        EmbeddingConfig(**options)
