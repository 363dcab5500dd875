"""Losses for rare clicks, checked against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adsim.errors import ConfigError
from adsim.models.losses import (
    ClassBalancedLoss,
    FocalLoss,
    HardNegativeLoss,
    build_loss,
    class_balanced_weights,
    downsample_negatives,
    focal_loss,
    recalibrate,
    recalibrate_logit,
)


def test_focal_loss_hand_values() -> None:
    # click at p = 0.5: -log 0.5 · (1 - 0.5)^2 = 0.693147 · 0.25
    assert focal_loss(torch.tensor([0.0]), torch.tensor([1.0])).item() == pytest.approx(0.1732868, abs=1e-6)
    # no click at p = 0.75 (logit ln 3): p_t = 0.25 → -log 0.25 · 0.75^2 = 1.386294 · 0.5625
    lg = torch.tensor([math.log(3.0)])
    assert focal_loss(lg, torch.tensor([0.0])).item() == pytest.approx(0.7797905, abs=1e-6)
    # α = 0.25 weighs clicks by 0.25 and non-clicks by 0.75
    assert focal_loss(lg, torch.tensor([0.0]), alpha=0.25).item() == pytest.approx(0.5848429, abs=1e-6)
    assert focal_loss(torch.tensor([0.0]), torch.tensor([1.0]), alpha=0.25).item() == pytest.approx(0.0433217, abs=1e-6)


def test_focal_with_gamma_zero_is_bce_and_default_gamma_is_two() -> None:
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(50, 2, generator=g), (torch.rand(50, 2, generator=g) < 0.3).float()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
    assert torch.allclose(focal_loss(logits, labels, gamma=0.0), bce)
    assert FocalLoss().gamma == 2.0
    assert FocalLoss()(logits, labels) < bce  # easy examples are down-weighted


def test_class_balanced_weights_effective_number() -> None:
    # E_n = (1 - β^n)/(1 - β): E_900 = 99.988, E_100 = 63.397 → w ∝ 1/E, Σ w = 2
    w = class_balanced_weights(900, 100, beta=0.99)
    assert w.tolist() == pytest.approx([0.7760416, 1.2239584], abs=1e-6)
    assert class_balanced_weights(900, 100, beta=0.0).tolist() == pytest.approx([1.0, 1.0])
    # β → 1 approaches inverse class frequency (ratio 9)
    w1 = class_balanced_weights(900, 100, beta=1 - 1e-9)
    assert (w1[1] / w1[0]).item() == pytest.approx(9.0, rel=1e-3)
    # per task
    assert class_balanced_weights(np.array([900, 50]), np.array([100, 50]), 0.99).shape == (2, 2)


def test_class_balanced_loss_weighs_each_class() -> None:
    loss = ClassBalancedLoss(n_neg=900, n_pos=100, beta=0.99)
    logits, labels = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0])
    expected = math.log(2) * (1.2239584 + 0.7760416) / 2
    assert loss(logits, labels).item() == pytest.approx(expected, abs=1e-6)


def test_hard_negative_mining_keeps_positives_and_hardest_negatives() -> None:
    logits = torch.tensor([0.0, 5.0, -5.0, 3.0, -3.0, 0.0], requires_grad=True)
    labels = torch.tensor([1.0, 0, 0, 0, 0, 0])
    loss = HardNegativeLoss(neg_ratio=2, min_negatives=0)(logits, labels)
    # softplus(0) [the click], softplus(5), softplus(3) [the two hardest non-clicks]
    assert loss.item() == pytest.approx(2.9161500, abs=1e-6)
    loss.backward()
    assert (logits.grad != 0).tolist() == [True, True, False, True, False, False]


def test_hard_negative_mining_per_task_and_minimum() -> None:
    logits = torch.tensor([[0.0, 1.0], [2.0, -1.0], [1.0, 4.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    # task 0: one click + max(1, 1·1)=1 hardest negative (logit 2); task 1: no click → min 1 negative (logit 4)
    loss = HardNegativeLoss(neg_ratio=1, min_negatives=1)(logits, labels)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert loss.item() == pytest.approx((sp(0.0) + sp(2.0) + sp(4.0)) / 3, abs=1e-6)


def test_negative_downsampling_keeps_clicks_and_a_fraction_of_non_clicks() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random(100_000) < 0.05).astype(np.float32)
    idx = downsample_negatives(labels, 0.2, np.random.default_rng(1))
    kept = labels[idx]
    assert kept.sum() == labels.sum()  # every click kept
    n_neg = int((labels == 0).sum())
    assert abs((kept == 0).sum() - 0.2 * n_neg) < 4 * math.sqrt(n_neg * 0.2 * 0.8)
    assert np.array_equal(idx, downsample_negatives(labels, 0.2, np.random.default_rng(1)))  # seeded


def test_recalibration_inverts_the_sampling_bias() -> None:
    # a sample keeping non-clicks at rate w sees q = p / (p + (1 - p) w); recalibrate maps q back to p
    p = np.array([1e-4, 0.01, 0.1, 0.5, 0.9])
    w = 0.05
    q = p / (p + (1 - p) * w)
    assert np.allclose(recalibrate(q, w), p)
    assert recalibrate(0.5, 0.1) == pytest.approx(0.5 / 5.5)
    logit_q = np.log(q / (1 - q))
    assert np.allclose(recalibrate_logit(logit_q, w), np.log(p / (1 - p)))
    assert torch.allclose(recalibrate(torch.tensor(q), w), torch.tensor(p))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: build_loss("dice"), "unknown loss 'dice'; available: bce, class_balanced, focal, hard_negative"),
        (lambda: build_loss("focal", gamma=-1), "focal gamma must be >= 0, got -1"),
        (lambda: build_loss("focal", alpha=1.5), r"focal alpha must be in \(0, 1\) or null, got 1.5"),
        (lambda: build_loss("focal", beta=2), "loss 'focal': .*beta"),
        (lambda: build_loss("class_balanced", n_neg=10, n_pos=0), "class counts must be > 0"),
        (lambda: build_loss("class_balanced", n_neg=10, n_pos=1, beta=1.0), r"beta must be in \[0, 1\), got 1.0"),
        (lambda: build_loss("hard_negative", neg_ratio=0), "neg_ratio must be > 0, got 0"),
        (lambda: downsample_negatives(np.zeros(3), 0.0, np.random.default_rng(0)), r"rate must be in \(0, 1\], got 0.0"),
        (lambda: recalibrate(0.5, 1.5), r"rate must be in \(0, 1\], got 1.5"),
    ],
)
def test_invalid_loss_options(call, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()
