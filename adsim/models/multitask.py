"""Multi-task CTR/CVR learning: the output contract, task weighting and a trainer that learns it.

Output contract (every multi-task model in the zoo)
---------------------------------------------------
``forward(batch)`` returns logits ``(B, T)``, one column per label in ``schema.tasks``, and column
``t`` models **its label over every impression**: with tasks ``(click, conversion)`` and
conversions that only happen after a click, column 0 is pCTR = P(click | x) and column 1 is
pCTCVR = P(click ∧ conversion | x). This is what the pipeline's trainer (binary cross-entropy per
column), its per-task calibrators and a world model need, and it is exactly ESMM's training
objective (Ma et al. 2018, "Entire Space Multi-Task Model", SIGIR):

.. math::

    L = \\sum_i \\ell(y^{click}_i, \\text{pCTR}_i)
        + \\ell(y^{click}_i y^{conv}_i, \\text{pCTR}_i \\cdot \\text{pCVR}_i)

over the entire impression space. ESMM builds column 1 from its two towers
(pCTCVR = pCTR × pCVR) and exposes the post-click pCVR = P(conversion | click, x) through
``cvr_logits(batch)``; for any model :func:`post_click_cvr` derives it as pCTCVR / pCTR.
A CVR model trained on clicked rows only estimates the same pCVR but suffers sample selection
bias when applied to all impressions (``benchmarks/multitask.py`` measures it).

Task weighting
--------------
:class:`MultiTaskLoss` combines the per-task losses :math:`L_t` (mean binary cross-entropy):

* ``fixed``: :math:`\\sum_t w_t L_t / \\sum_t w_t` (the trainer's ``train.task_weights``);
* ``uncertainty``: homoscedastic-uncertainty weighting (Kendall, Gal & Cipolla 2018, "Multi-Task
  Learning Using Uncertainty to Weigh Losses", CVPR), eq. (10) for classification with
  :math:`s_t = \\log \\sigma_t^2` learned:
  :math:`\\sum_t e^{-s_t} L_t + \\tfrac12 s_t`. At the optimum :math:`e^{-s_t} = 1 / (2 L_t)`,
  so a task with a larger (noisier) loss is down-weighted.

The pipeline's :class:`~adsim.models.train.Trainer` builds its objective as a
:class:`MultiTaskLoss` from ``train.task_weighting`` (+ ``train.task_weights``, ``train.loss``):
the :math:`s_t` are optimised with the model (no weight decay) and saved in the resume state.
From YAML::

    train: {task_weighting: uncertainty}                  # or: {task_weights: [1.0, 2.0]}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = [
    "WEIGHTINGS",
    "MultiTaskLoss",
    "log_sigmoid_product_logit",
    "post_click_cvr",
]

WEIGHTINGS = ("fixed", "uncertainty")


def log_sigmoid_product_logit(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """logit(σ(a)·σ(b)), computed in log space (stable for large |a|, |b|).

    With :math:`\\ell = \\log σ(a) + \\log σ(b) < 0`:
    :math:`\\operatorname{logit} = \\ell - \\log(1 - e^{\\ell})`, using ``log(-expm1(ℓ))`` for
    ℓ > -log 2 and ``log1p(-exp(ℓ))`` otherwise (Mächler 2012, "Accurately computing log(1-exp(-|a|))").
    """
    a, b = a.float(), b.float()
    log_p = (nn.functional.logsigmoid(a) + nn.functional.logsigmoid(b)).clamp(max=-1e-7)
    log1m = torch.where(
        log_p > -0.6931471805599453,
        torch.log(-torch.expm1(log_p)),
        torch.log1p(-torch.exp(log_p)),
    )
    return log_p - log1m


def post_click_cvr(p_ctr: np.ndarray, p_ctcvr: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """pCVR = P(conversion | click) = pCTCVR / pCTR, clipped to [0, 1]."""
    p_ctr = np.asarray(p_ctr, dtype=np.float64)
    return np.clip(np.asarray(p_ctcvr, dtype=np.float64) / np.maximum(p_ctr, eps), 0.0, 1.0)


class MultiTaskLoss(nn.Module):
    """Weighted sum of per-task losses; see the module docstring.

    This is the objective of the pipeline's :class:`~adsim.models.train.Trainer` (built from
    ``train.loss``, ``train.task_weighting`` and ``train.task_weights``); its parameters (the
    uncertainty log-variances) join the trainer's optimiser and its state travels in ``resume.pt``.

    Args:
        n_tasks: T.
        weighting: ``"fixed"`` or ``"uncertainty"``.
        weights: fixed weights w_t (default all 1; ignored by ``uncertainty``).
        label_smoothing: targets become y(1-ε) + ε/2.
        base: the per-task loss L_t(logits ``(B,)``, targets ``(B,)``) -> scalar: one module for
            every task or a sequence of T modules (e.g. class-balanced weights per task); default
            binary cross-entropy (any loss of :mod:`adsim.models.losses`).
    """

    def __init__(
        self, n_tasks: int, weighting: str = "fixed", weights: Sequence[float] | None = None,
        label_smoothing: float = 0.0, base: nn.Module | Sequence[nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {', '.join(WEIGHTINGS)}, got {weighting!r}")
        if weights is not None and len(weights) != n_tasks:
            raise ValueError(f"{len(weights)} task weights given for {n_tasks} tasks")
        self.weighting = weighting
        self.label_smoothing = float(label_smoothing)
        w = torch.ones(n_tasks) if weighting == "uncertainty" or weights is None \
            else torch.tensor(list(weights), dtype=torch.float32)
        if (w < 0).any() or w.sum() <= 0:
            raise ValueError("task weights must be >= 0 with a positive sum")
        self.register_buffer("weights", w)
        #: s_t = log σ_t² (uncertainty weighting); a parameter only in that mode
        self.log_vars = nn.Parameter(torch.zeros(n_tasks)) if weighting == "uncertainty" else None
        if base is None or isinstance(base, nn.Module):
            self.base = None if base is None else nn.ModuleList([base])
        else:
            if len(base) != n_tasks:
                raise ValueError(f"{len(base)} per-task losses given for {n_tasks} tasks")
            self.base = nn.ModuleList(base)

    def per_task(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """``(T,)`` loss of each task (mean binary cross-entropy unless ``base`` says otherwise)."""
        logits = logits.float().reshape(labels.shape)  # (B, T)
        eps = self.label_smoothing
        target = labels * (1.0 - eps) + 0.5 * eps if eps else labels
        if self.base is None:
            return nn.functional.binary_cross_entropy_with_logits(
                logits, target, reduction="none"
            ).mean(0)
        fns = list(self.base) * labels.shape[1] if len(self.base) == 1 else list(self.base)
        return torch.stack([fn(logits[:, t], target[:, t]) for t, fn in enumerate(fns)])  # T is small

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        losses = self.per_task(logits, labels)
        if self.log_vars is None:
            return (losses * self.weights).sum() / self.weights.sum()
        return (torch.exp(-self.log_vars) * losses + 0.5 * self.log_vars).sum()

    def task_weights(self) -> np.ndarray:
        """The current effective weight of each task (``e^{-s_t}`` or the normalised w_t)."""
        if self.log_vars is None:
            w = self.weights / self.weights.sum()
        else:
            w = torch.exp(-self.log_vars.detach())
        return w.cpu().double().numpy()
