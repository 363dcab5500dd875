"""Losses for rare clicks: focal, class-balanced, hard-negative mining; negative down-sampling.

All losses take **logits** and 0/1 labels of the same shape — ``(B,)`` for one task or ``(B, T)``
for several — and return a scalar (``reduction="mean"``), so a trainer can use any of them in
place of ``binary_cross_entropy_with_logits``. :func:`build_loss` makes one from a config name.

* **Focal loss** — Lin et al. (2017), "Focal Loss for Dense Object Detection", ICCV:
  ``FL = -α_t (1 - p_t)^γ log p_t`` with ``p_t = p`` for a click and ``1 - p`` otherwise, ``α_t = α``
  / ``1 - α``. Easy (well-classified) impressions are down-weighted by ``(1 - p_t)^γ``.
* **Class-balanced loss** — Cui et al. (2019), "Class-Balanced Loss Based on Effective Number of
  Samples", CVPR: the effective number of ``n`` samples is ``E_n = (1 - β^n) / (1 - β)``; class c
  gets weight ``w_c ∝ 1 / E_{n_c} = (1 - β) / (1 - β^{n_c})``, normalised so ``Σ_c w_c = 2``
  (the number of classes). ``β → 0`` is no re-weighting, ``β → 1`` inverse class frequency.
* **Negative down-sampling** — He et al. (2014), "Practical Lessons from Predicting Clicks on Ads at
  Facebook", ADKDD §6.2: keep every click and each non-click with probability ``w``; a model
  trained on the sample predicts ``q``, and the calibrated probability is
  ``p = q / (q + (1 - q) / w)``, i.e. ``logit p = logit q + log w`` (:func:`recalibrate`).
* **Hard-negative mining** — online hard example mining (Shrivastava et al. 2016, "Training
  Region-based Object Detectors with Online Hard Example Mining", CVPR), per task and batch: every
  positive and only the ``neg_ratio × n_pos`` (at least ``min_negatives``) non-clicks with the
  largest loss count. It changes the effective class prior, so its probabilities are *not*
  calibrated: recalibrate on validation data (``adsim.models.calibration``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from adsim.errors import ConfigError

__all__ = [
    "focal_loss",
    "FocalLoss",
    "class_balanced_weights",
    "ClassBalancedLoss",
    "HardNegativeLoss",
    "downsample_negatives",
    "recalibrate",
    "recalibrate_logit",
    "LOSSES",
    "build_loss",
]


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ConfigError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def focal_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    gamma: float = 2.0,
    alpha: float | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Focal loss ``-α_t (1 - p_t)^γ log p_t`` from logits (``γ = 0``, ``α = None`` is BCE)."""
    labels = labels.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # -log p_t
    if gamma != 0:
        p = torch.sigmoid(logits)
        p_t = p * labels + (1 - p) * (1 - labels)
        ce = ce * (1 - p_t).pow(gamma)
    if alpha is not None:
        ce = ce * (alpha * labels + (1 - alpha) * (1 - labels))
    return _reduce(ce, reduction)


class FocalLoss(nn.Module):
    """:func:`focal_loss` as a module (Lin et al. 2017)."""

    def __init__(self, gamma: float = 2.0, alpha: float | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if gamma < 0:
            raise ConfigError(f"focal gamma must be >= 0, got {gamma}")
        if alpha is not None and not 0 < alpha < 1:
            raise ConfigError(f"focal alpha must be in (0, 1) or null, got {alpha}")
        self.gamma, self.alpha, self.reduction = gamma, alpha, reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, labels, self.gamma, self.alpha, self.reduction)


def class_balanced_weights(n_neg: Any, n_pos: Any, beta: float = 0.9999) -> torch.Tensor:
    """Weights ``(…, 2)`` = ``[w_neg, w_pos]`` with ``w_c ∝ (1-β)/(1-β^{n_c})`` and ``Σ_c w_c = 2``.

    ``n_neg``/``n_pos`` may be numbers or per-task arrays ``(T,)`` (Cui et al. 2019, eq. 3).
    """
    if not 0 <= beta < 1:
        raise ConfigError(f"class-balanced beta must be in [0, 1), got {beta}")
    n = torch.stack([torch.as_tensor(n_neg, dtype=torch.float64), torch.as_tensor(n_pos, dtype=torch.float64)], -1)
    if bool((n <= 0).any()):
        raise ConfigError(f"class counts must be > 0 for the class-balanced loss, got neg={n_neg}, pos={n_pos}")
    inv_eff = (1 - beta) / (1 - torch.pow(torch.tensor(beta, dtype=torch.float64), n))  # 1 / E_n
    return (2 * inv_eff / inv_eff.sum(-1, keepdim=True)).float()


class ClassBalancedLoss(nn.Module):
    """Class-balanced BCE (or focal, ``gamma > 0``): each sample weighted by its class's ``w_c``.

    ``n_neg``, ``n_pos``: training-set class counts (per task as ``(T,)`` arrays for several tasks).
    """

    def __init__(
        self, n_neg: Any, n_pos: Any, beta: float = 0.9999, gamma: float = 0.0, reduction: str = "mean"
    ) -> None:
        super().__init__()
        self.register_buffer("class_weights", class_balanced_weights(n_neg, n_pos, beta))  # (…, 2)
        self.gamma, self.reduction = gamma, reduction

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.to(logits.dtype)
        w = self.class_weights.to(logits.dtype)
        weight = w[..., 0] * (1 - labels) + w[..., 1] * labels
        loss = focal_loss(logits, labels, self.gamma, None, "none") * weight
        return _reduce(loss, self.reduction)


class HardNegativeLoss(nn.Module):
    """BCE over all positives and the hardest ``max(min_negatives, neg_ratio·n_pos)`` negatives.

    Per task column; the mean is over the selected samples. See the module docstring.
    """

    def __init__(self, neg_ratio: float = 3.0, min_negatives: int = 16) -> None:
        super().__init__()
        if neg_ratio <= 0:
            raise ConfigError(f"hard-negative neg_ratio must be > 0, got {neg_ratio}")
        if min_negatives < 0:
            raise ConfigError(f"hard-negative min_negatives must be >= 0, got {min_negatives}")
        self.neg_ratio, self.min_negatives = neg_ratio, min_negatives

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        labels = labels.to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, labels, reduction="none")  # (B,) | (B, T)
        lb = loss.reshape(loss.shape[0], -1)  # (B, T)
        pos = labels.reshape(lb.shape) > 0.5
        n_pos = pos.sum(0)  # (T,)
        k = torch.clamp((n_pos * self.neg_ratio).long(), min=self.min_negatives)  # negatives kept per task
        neg_loss = lb.detach().masked_fill(pos, float("-inf"))
        order = neg_loss.argsort(dim=0, descending=True)  # (B, T)
        rank = torch.empty_like(order).scatter_(0, order, torch.arange(lb.shape[0], device=lb.device).unsqueeze(1).expand_as(order))
        keep = pos | ((rank < k) & ~pos)
        return (lb * keep).sum() / keep.sum().clamp(min=1)


def downsample_negatives(labels: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a sample keeping every click and each non-click with probability ``rate``.

    ``labels``: ``(n,)`` 0/1 (for several tasks pass the task that defines a "negative", e.g. click).
    Train on ``rows[idx]`` and map predictions back with :func:`recalibrate` (He et al. 2014).
    """
    if not 0 < rate <= 1:
        raise ConfigError(f"negative down-sampling rate must be in (0, 1], got {rate}")
    labels = np.asarray(labels)
    keep = (labels > 0.5) | (rng.random(labels.shape[0]) < rate)
    return np.flatnonzero(keep)


def recalibrate(q: Any, rate: float) -> Any:
    """``p = q / (q + (1 - q) / w)``: probabilities of a model trained with negatives kept at rate ``w``."""
    if not 0 < rate <= 1:
        raise ConfigError(f"negative down-sampling rate must be in (0, 1], got {rate}")
    return q / (q + (1 - q) / rate)


def recalibrate_logit(logit: Any, rate: float) -> Any:
    """The same correction on logits: ``logit p = logit q + log w``."""
    if not 0 < rate <= 1:
        raise ConfigError(f"negative down-sampling rate must be in (0, 1], got {rate}")
    return logit + float(np.log(rate))


class _BCE(nn.Module):
    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))


#: config name -> loss class
LOSSES: dict[str, type[nn.Module]] = {
    "bce": _BCE,
    "focal": FocalLoss,
    "class_balanced": ClassBalancedLoss,
    "hard_negative": HardNegativeLoss,
}


def build_loss(name: str, **options: Any) -> nn.Module:
    """A loss module from its config name and options, e.g. ``build_loss("focal", gamma=2)``."""
    if name not in LOSSES:
        raise ConfigError(f"unknown loss {name!r}; available: {', '.join(sorted(LOSSES))}")
    try:
        return LOSSES[name](**options)
    except TypeError as exc:
        raise ConfigError(f"loss {name!r}: {exc}") from None
