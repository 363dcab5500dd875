"""Every zoo model: shapes and gradients, overfitting a small batch, beating LR on interactions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _zoo_helpers import fit, make_interaction_data, predict, to_batch
from sklearn.metrics import roc_auc_score

from adsim.errors import ConfigError
from adsim.models.schema import ModelSchema, SequenceField, SparseField
from adsim.models.zoo import available_models, build_model

#: small configs per model (the defaults are production-sized); keys are test ids
SMALL: dict[str, tuple[str, dict]] = {
    "lr": ("lr", {}),
    "fm": ("fm", {"embed_dim": 8}),
    "deepfm": ("deepfm", {"embed_dim": 8, "hidden": (64, 32)}),
    "xdeepfm": ("xdeepfm", {"embed_dim": 8, "cin_layers": (16, 16), "hidden": (64, 32)}),
    "dcnv2-parallel": ("dcnv2", {"embed_dim": 8, "hidden": (64, 32), "n_cross": 2}),
    "dcnv2-stacked-mix": ("dcnv2", {"embed_dim": 8, "hidden": (64, 32), "n_cross": 2, "structure": "stacked", "low_rank": 8}),
    "autoint": ("autoint", {"embed_dim": 8, "n_layers": 2, "attention_dim": 8}),
    "fibinet": ("fibinet", {"embed_dim": 8, "hidden": (64, 32), "bilinear_type": "field_each"}),
    "dlrm": ("dlrm", {"embed_dim": 8, "top": (64, 32), "bottom": (16,)}),
    "fgn-fm": ("fgn", {"base": "fm", "base_config": {"embed_dim": 8}}),
    "fgn-dcnv2-vector": ("fgn", {"base": "dcnv2", "gate": "vector", "base_config": {"embed_dim": 8, "hidden": (32,)}}),
}


def test_every_registered_model_is_tested() -> None:
    assert set(available_models("single")) == {name for name, _ in SMALL.values()}


def _schema(n_tasks: int) -> ModelSchema:
    return ModelSchema(
        dense=("d0", "d1", "d2"),
        sparse=(
            SparseField("user", 40, share="user"),
            SparseField("ad", 25),
            SparseField("session_user", 30, share="user"),
            SparseField("device", 3),
            SparseField("site", 50_000),
        ),
        sequences=(SequenceField("clicked_ads", 25, 6, share=None),),
        tasks=("click", "conversion")[:n_tasks],
    )


def _batch(schema: ModelSchema, b: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sparse = torch.stack([torch.randint(0, f.vocab_size, (b,), generator=g) for f in schema.sparse], 1)
    seq = torch.randint(0, 25, (b, 1, 6), generator=g)
    seq[:, :, 3:] = 0  # padding
    return {"dense": torch.randn(b, schema.n_dense, generator=g), "sparse": sparse, "seq": seq}


def _with(cfg: dict, **extra: object) -> dict:
    if "base_config" in cfg:
        return {**cfg, "base_config": {**cfg["base_config"], **extra}}
    return {**cfg, **extra}


EMBEDDING_VARIANTS = {
    "plain": {},
    "adaptive-hashed-l2-dropout": {"adaptive_dim": True, "hash_buckets": 1000, "l2_reg": 1e-4, "embed_dropout": 0.1},
}


# DeepFM (the CTR pipeline's baseline) uses the plain FieldEmbedding: only the plain variant applies
SHAPE_CASES = [(k, v) for k in SMALL for v in EMBEDDING_VARIANTS
               if not (SMALL[k][0] == "deepfm" and v != "plain")]


@pytest.mark.parametrize("n_tasks", [1, 2])
@pytest.mark.parametrize(("key", "variant"), SHAPE_CASES)
def test_forward_backward_shapes(key: str, n_tasks: int, variant: str) -> None:
    name, cfg = SMALL[key]
    schema = _schema(n_tasks)
    torch.manual_seed(0)
    model = build_model(name, schema, **_with(cfg, **EMBEDDING_VARIANTS[variant]))
    batch = _batch(schema, 16)
    out = model(batch)
    assert out.shape == ((16,) if n_tasks == 1 else (16, n_tasks))
    assert torch.isfinite(out).all()
    from adsim.models.layers import regularization_loss

    loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out)) + regularization_loss(model)
    loss.backward()
    no_grad = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not no_grad, f"parameters without a finite gradient: {no_grad}"
    # eval mode and a batch of one work too, and the output does not depend on the other rows
    model.eval()
    with torch.no_grad():
        one = model({k: v[:1] for k, v in batch.items()})
        assert torch.allclose(one, model(batch)[:1], atol=1e-5)


@pytest.mark.parametrize("key", list(SMALL))
def test_overfits_a_small_batch(key: str) -> None:
    name, cfg = SMALL[key]
    d, _ = make_interaction_data(128, np.random.default_rng(1)).split(128)
    schema = make_interaction_data(8, np.random.default_rng(1)).schema
    torch.manual_seed(0)
    model = build_model(name, schema, **cfg)
    x, y = to_batch(d), torch.from_numpy(d["y"])
    # LR's weights start at zero and must grow to O(1): a larger step reaches its optimum in 150
    opt = torch.optim.Adam(model.parameters(), lr=0.1 if name == "lr" else 1e-2)
    first = None
    for _ in range(150):
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = F.binary_cross_entropy_with_logits(model(x), y).item()
    if name == "lr":
        # an additive model cannot memorise the rows: it must reach the (near-unregularised)
        # logistic-regression optimum on the one-hot encoding instead
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import log_loss
        from sklearn.preprocessing import OneHotEncoder

        onehot = OneHotEncoder(categories=[np.arange(12)] * 5).fit_transform(d["sparse"]).toarray()
        xs = np.hstack([onehot, d["dense"]])
        best = log_loss(d["y"], LogisticRegression(C=1e4, max_iter=5000).fit(xs, d["y"]).predict_proba(xs)[:, 1])
        assert final < best + 0.02, f"lr: training loss {final:.4f}, optimum {best:.4f}"
    else:
        assert final < 0.02, f"{key}: training loss {first:.3f} -> {final:.4f} after 150 full-batch steps"


@pytest.fixture(scope="module")
def lr_auc(interaction_data) -> float:
    train, test = interaction_data.split(10_000)
    torch.manual_seed(0)
    model = fit(build_model("lr", interaction_data.schema), train)
    return roc_auc_score(test["y"], predict(model, test))


#: plain AutoInt needs more passes before its attention finds the interactions
EPOCHS = {"autoint": 8}


@pytest.mark.parametrize("key", [k for k in SMALL if k not in ("lr", "fgn-dcnv2-vector")])
def test_beats_logistic_regression_on_interactions(key: str, interaction_data, lr_auc: float) -> None:
    name, cfg = SMALL[key]
    train, test = interaction_data.split(10_000)
    bayes = roc_auc_score(test["y"], test["logit"])
    torch.manual_seed(0)
    cfg = cfg if name == "deepfm" else _with(cfg, init_std=0.1)  # a small data set learns faster from a wider init
    model = fit(build_model(name, interaction_data.schema, **cfg), train, epochs=EPOCHS.get(key, 4))
    auc = roc_auc_score(test["y"], predict(model, test))
    assert auc > lr_auc + 0.03, f"{key}: AUC {auc:.4f} vs LR {lr_auc:.4f} (Bayes-optimal {bayes:.4f})"
    assert auc < bayes + 0.005  # sanity: nothing beats the truth


def test_autoint_attention_is_retrievable() -> None:
    schema = _schema(1)
    model = build_model("autoint", schema, embed_dim=8, n_layers=2, n_heads=3, attention_dim=4)
    model(_batch(schema, 5))
    n_fields = schema.n_sparse + len(schema.sequences) + schema.n_dense
    assert len(model.attention) == 2
    for att in model.attention:
        assert att.shape == (5, 3, n_fields, n_fields)
        assert torch.allclose(att.sum(-1), torch.ones(5, 3, n_fields), atol=1e-5)
        assert not att.requires_grad


def test_fgn_wraps_any_model_and_exposes_gates() -> None:
    schema = _schema(2)
    for base in ("deepfm", "dlrm", "autoint"):
        model = build_model("fgn", schema, base=base, base_config={"embed_dim": 8}, gate="bit")
        out = model(_batch(schema, 4))
        assert out.shape == (4, 2)
        assert model.gates is not None and model.gates.shape[:1] == (4,) and model.gates.shape[-1] == 8
        assert ((model.gates > 0) & (model.gates < 1)).all()
    vec = build_model("fgn", schema, base="fm", base_config={"embed_dim": 4}, gate="vector", field_private=False)
    vec(_batch(schema, 4))
    assert vec.gates.shape[-1] == 1


@pytest.mark.parametrize("key", ["xdeepfm", "dcnv2-stacked-mix", "fibinet", "fgn-fm"])
def test_state_dict_round_trip(key: str) -> None:
    name, cfg = SMALL[key]
    schema = _schema(1)
    torch.manual_seed(0)
    a = build_model(name, schema, **cfg)
    torch.manual_seed(1)
    b = build_model(name, schema, **cfg)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    batch = _batch(schema, 8)
    with torch.no_grad():
        assert torch.equal(a(batch), b(batch))


@pytest.mark.parametrize("bilinear", ["field_all", "field_each", "field_interaction"])
def test_fibinet_bilinear_types(bilinear: str) -> None:
    schema = _schema(1)
    model = build_model("fibinet", schema, embed_dim=4, hidden=(8,), bilinear_type=bilinear)
    assert model(_batch(schema, 3)).shape == (3,)
    assert model.senet.weights.shape == (3, schema.n_sparse + 1 + schema.n_dense)


INVALID = [
    ("dcnv2", {"structure": "diagonal"}, "structure must be 'stacked' or 'parallel'"),
    ("dcnv2", {"low_rank": 0}, "low_rank must be >= 1"),
    ("xdeepfm", {"cin_layers": (15, 16)}, "with split_half, cin_layers before the last must be even"),
    ("xdeepfm", {"cin_layers": ()}, "cin_layers must be a non-empty list"),
    ("autoint", {"n_heads": 0}, "n_heads must be >= 1"),
    ("fibinet", {"bilinear_type": "outer"}, "bilinear_type must be"),
    ("fm", {"embed_dim": 0}, "embed_dim must be >= 1"),
    ("fm", {"hash_buckets": 1}, "hash_buckets must be >= 2"),
    ("fm", {"dim_rule": (6, 0.25)}, "dim_rule must be [a, p, cap]"),
    ("lr", {"l2_reg": -1.0}, "l2_reg must be >= 0"),
    ("fgn", {"gate": "field"}, "gate must be 'bit' or 'vector'"),
    ("fgn", {"base": "fgn"}, "fgn cannot wrap itself"),
    ("fgn", {"base": "nope"}, "unknown model 'nope'"),
    ("dlrm", {"towers": 2}, "model 'dlrm' has no option 'towers'"),
]


@pytest.mark.parametrize(("name", "cfg", "message"), INVALID)
def test_invalid_configs(name: str, cfg: dict, message: str) -> None:
    with pytest.raises((ConfigError, ValueError), match=message.replace("[", r"\[").replace("(", r"\(")):
        build_model(name, _schema(1), **cfg)


EDGE_SCHEMAS = {
    "dense-only": ModelSchema(dense=("a", "b")),
    "sparse-only": ModelSchema(sparse=(SparseField("x", 5), SparseField("y", 7))),
    "sequences-only": ModelSchema(sequences=(SequenceField("h", 9, 4), SequenceField("g", 9, 4))),
}


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("schema_key", list(EDGE_SCHEMAS))
def test_every_model_handles_partial_schemas(schema_key: str) -> None:
    schema = EDGE_SCHEMAS[schema_key]
    g = torch.Generator().manual_seed(0)
    batch = {"dense": torch.randn(3, schema.n_dense, generator=g),
             "sparse": torch.randint(0, 5, (3, schema.n_sparse), generator=g),
             "seq": torch.randint(0, 9, (3, len(schema.sequences), 4), generator=g)}
    for name in available_models("single"):
        model = build_model(name, schema, **({"base": "dcnv2"} if name == "fgn" else {}))
        out = model(batch)
        assert out.shape == (3,) and torch.isfinite(out).all(), name
        out.sum().backward()
