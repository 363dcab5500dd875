"""Every multi-task model trains on the real Ali-CCP and AliExpress samples; shapes and contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adsim.models.config import TrainConfig
from adsim.models.schema import ModelSchema, SequenceField, SparseField
from adsim.models.zoo import build_model

MODELS = {
    "shared_bottom": {"embed_dim": 4, "bottom": (16,), "tower": (8,)},
    "esmm": {"embed_dim": 4, "tower": (16,)},
    "mmoe": {"embed_dim": 4, "n_experts": 2, "expert": (8,), "tower": (8,)},
    "ple": {"embed_dim": 4, "n_levels": 2, "n_specific": 1, "n_shared": 1, "expert": (8,), "tower": (8,)},
    "multitask_transformer": {"embed_dim": 8, "n_heads": 2, "n_layers": 1, "tower": (8,)},
}


def _fit(name, data, weighting=None):
    from adsim.models.train import Trainer

    train, val, schema = data
    torch.manual_seed(0)
    model = build_model(name, schema, **MODELS[name])
    cfg = TrainConfig(epochs=1, batch_size=32, progress=False, tensorboard=False, device="cpu",
                      task_weighting=weighting or "fixed")
    trainer = Trainer(model, cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = trainer.fit(train, val)
    p = Trainer.predict_proba(model, val)
    assert p.shape == (len(val), 2)
    assert np.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
    assert np.isfinite(result.best_val_loss)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "training changed no parameter"
    return model, trainer


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trains_on_ali_ccp(name, ali_ccp):
    _fit(name, ali_ccp)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_trains_on_aliexpress(name, aliexpress):
    _fit(name, aliexpress)


def test_uncertainty_weighting_learns_log_variances(aliexpress):
    _, trainer = _fit("mmoe", aliexpress, weighting="uncertainty")
    s = trainer.objective.log_vars.detach()
    assert not torch.equal(s, torch.zeros_like(s)), "log-variances did not move"


def _schema(n_tasks=2, seq=True):
    return ModelSchema(
        dense=("a", "b"),
        sparse=(SparseField("u", 7), SparseField("item", 11)),
        sequences=(SequenceField("hist", 11, 5),) if seq else (),
        tasks=("click", "conversion")[:n_tasks],
    )


def _batch(b=6, seq=True):
    g = torch.Generator().manual_seed(0)
    out = {"dense": torch.randn(b, 2, generator=g),
           "sparse": torch.stack([torch.randint(0, 7, (b,), generator=g),
                                  torch.randint(0, 11, (b,), generator=g)], 1)}
    if seq:
        s = torch.randint(1, 11, (b, 1, 5), generator=g)
        s[0, 0, :] = 0  # an empty history
        s[1, 0, 2:] = 0
        out["seq"] = s
    return out


@pytest.mark.parametrize("encoder", ["mean", "gru", "lstm", "bst"])
@pytest.mark.parametrize("name", ["shared_bottom", "esmm", "mmoe", "ple"])
def test_sequence_encoders_in_every_flat_model(name, encoder):
    opts = {k: v for k, v in MODELS[name].items()} | {"seq_encoder": encoder, "embed_dim": 4}
    if encoder == "bst":
        opts["seq_target"] = "item"
    model = build_model(name, _schema(), **opts)
    z = model(_batch())
    assert z.shape == (6, 2) and torch.isfinite(z).all()
    z.sum().backward()


def test_sequence_encoders_mask_padding_and_read_items():
    """A row's encoding does not depend on the batch's other rows' lengths (padding is masked)
    but does depend on its items."""
    from adsim.models.sequence import make_sequence_encoder

    for kind in ("mean", "gru", "lstm", "bst"):
        torch.manual_seed(0)
        enc = make_sequence_encoder(kind, 11, 4, 5).eval()
        a = torch.tensor([[3, 4, 0, 0, 0]])
        with_long_neighbour = torch.tensor([[3, 4, 0, 0, 0], [1, 2, 3, 4, 5]])
        assert torch.allclose(enc(a)[0], enc(with_long_neighbour)[0], atol=1e-6), kind
        other = torch.tensor([[3, 5, 0, 0, 0]])
        assert not torch.allclose(enc(a), enc(other)), kind
        empty = enc(torch.zeros(1, 5, dtype=torch.long))
        assert torch.isfinite(empty).all(), kind


def test_esmm_ctcvr_is_product_of_towers():
    model = build_model("esmm", _schema(seq=False), embed_dim=4, tower=(8,))
    batch = _batch(seq=False)
    z = model(batch)
    probs = model.task_probabilities(batch)
    assert torch.allclose(torch.sigmoid(z[:, 0]), probs["ctr"], atol=1e-6)
    assert torch.allclose(torch.sigmoid(z[:, 1]), probs["ctr"] * probs["cvr"], atol=1e-6)
    assert torch.allclose(torch.sigmoid(model.cvr_logits(batch)), probs["cvr"], atol=1e-6)


def test_logit_of_product_is_stable():
    from adsim.models.multitask import log_sigmoid_product_logit

    a = torch.tensor([-30.0, -2.0, 0.0, 3.0, 40.0])
    b = torch.tensor([5.0, -1.0, 0.0, 50.0, 40.0])
    z = log_sigmoid_product_logit(a, b)
    expected = torch.logit((torch.sigmoid(a.double()) * torch.sigmoid(b.double())).clamp(max=1 - 1e-7))
    assert torch.isfinite(z).all()
    assert torch.allclose(z.double()[:4], expected[:4], atol=1e-4)


def test_esmm_rejects_wrong_task_count():
    with pytest.raises(ValueError, match="exactly two labels"):
        build_model("esmm", _schema(n_tasks=1, seq=False))


def test_transformer_attention_weights():
    model = build_model("multitask_transformer", _schema(), embed_dim=8, n_heads=2, n_layers=2,
                        task_tokens=True)
    batch = _batch()
    att = model.attention(batch)
    names = model.token_names()
    assert len(att) == 2 and att[0].shape == (6, 2, len(names), len(names))
    assert torch.allclose(att[0].sum(-1), torch.ones(6, 2, len(names)), atol=1e-5)
    # row 0 has an empty history: its padded sequence tokens get no attention
    seq_cols = [i for i, n in enumerate(names) if n.startswith("seq:")]
    assert float(att[0][0, :, :, seq_cols].abs().max()) == 0.0
    assert names[:2] == ["[CLS:click]", "[CLS:conversion]"]


def test_transformer_esmm_mode():
    model = build_model("multitask_transformer", _schema(), embed_dim=8, n_heads=2, esmm=True)
    batch = _batch()
    z = model(batch)
    p_cvr = torch.sigmoid(model.cvr_logits(batch))
    assert torch.allclose(torch.sigmoid(z[:, 1]), torch.sigmoid(z[:, 0]) * p_cvr, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("mmoe", {"n_experts": 0}, "n_experts must be >= 1"),
        ("ple", {"n_specific": 0, "n_shared": 0}, "at least one expert"),
        ("shared_bottom", {"seq_encoder": "rnn"}, "seq_encoder must be one of"),
        ("shared_bottom", {"seq_encoder": "bst", "seq_target": "nope"}, "seq_target 'nope'"),
        ("multitask_transformer", {"embed_dim": 10, "n_heads": 4}, "divisible by n_heads"),
        ("shared_bottom", {"dropout": 1.0}, "dropout must be in"),
    ],
)
def test_invalid_options(name, options, message):
    with pytest.raises(ValueError, match=message):
        build_model(name, _schema(), **options)


def test_uncertainty_loss_formula():
    from adsim.models.multitask import MultiTaskLoss

    loss = MultiTaskLoss(2, "uncertainty")
    with torch.no_grad():
        loss.log_vars.copy_(torch.tensor([0.5, -1.0]))
    z = torch.tensor([[0.3, -1.0], [2.0, 0.1]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    per = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none").mean(0)
    expected = (torch.exp(-torch.tensor([0.5, -1.0])) * per + 0.5 * torch.tensor([0.5, -1.0])).sum()
    assert torch.allclose(loss(z, y), expected)
    fixed = MultiTaskLoss(2, "fixed", [3.0, 1.0])
    assert torch.allclose(fixed(z, y), (3 * per[0] + per[1]) / 4)
    with pytest.raises(ValueError, match="weighting must be one of"):
        MultiTaskLoss(2, "gradnorm")


def test_uncertainty_weights_survive_resume(aliexpress, tmp_path):
    from adsim.models.train import Trainer

    train, val, schema = aliexpress
    cfg = TrainConfig(epochs=1, batch_size=32, progress=False, tensorboard=False, device="cpu",
                      task_weighting="uncertainty")
    torch.manual_seed(0)
    first = Trainer(build_model("esmm", schema, **MODELS["esmm"]), cfg, tmp_path)
    first.fit(train, val)
    state = torch.load(tmp_path / "resume.pt", weights_only=True)
    saved = state["objective"]["log_vars"]
    assert torch.equal(saved, first.objective.log_vars.detach())
    assert not torch.equal(saved, torch.zeros_like(saved))
    # the log-variances are optimised: their Adam moments are in the optimiser state
    assert any(p is first.objective.log_vars for g in first.optimizer.param_groups for p in g["params"])
    assert len(state["optimizer"]["param_groups"]) == 3
    second = Trainer(build_model("esmm", schema, **MODELS["esmm"]), cfg, tmp_path)
    second.fit(train, val, resume=True)
    assert torch.equal(second.objective.log_vars.detach(), saved)


@pytest.mark.parametrize(("name", "options"), [
    ("shared_bottom", {"embed_dim": 4, "bottom": (8,), "seq_encoder": "gru"}),
    ("mmoe", {"embed_dim": 4, "n_experts": 2, "expert": (8,), "seq_encoder": "bst", "seq_target": "adgroup_id"}),
    ("multitask_transformer", {"embed_dim": 8, "n_heads": 2, "n_layers": 1}),
])
def test_real_behaviour_sequences_train(name, options, taobao_seq):
    """The real Taobao click_sequence column, padded and masked by data prep, feeds the encoders."""
    from adsim.models.train import Trainer

    train, val, schema = taobao_seq
    assert train.seq is not None and train.seq.shape[1:] == (1, 5) and (train.seq > 0).any()
    torch.manual_seed(0)
    model = build_model(name, schema, **options)
    cfg = TrainConfig(epochs=1, batch_size=32, progress=False, tensorboard=False, device="cpu")
    Trainer(model, cfg).fit(train, val)
    p = Trainer.predict_proba(model, val)
    assert p.shape == (len(val), 1) and np.isfinite(p).all()
