"""Training losses: cross-entropy with an ignore label, plain, OHEM or class-weighted; distillation."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def class_weights(labels: list[np.ndarray], num_classes: int) -> torch.Tensor:
    """ENet-style weights ``1 / ln(1.02 + frequency)``, normalised to mean 1."""
    counts = np.zeros(num_classes, dtype=np.float64)
    for lab in labels:
        counts += np.bincount(lab.reshape(-1), minlength=256)[:num_classes]
    freq = counts / max(counts.sum(), 1.0)
    w = 1.0 / np.log(1.02 + freq)
    return torch.tensor(w / w.mean(), dtype=torch.float32)


class SegLoss(torch.nn.Module):
    """``kind``: ``"ce"``, ``"ohem"`` (online hard example mining: the pixels whose target
    probability is below ``thresh``, and at least ``min_kept`` of the hardest), or ``"weighted"``."""

    def __init__(
        self,
        kind: str,
        ignore_index: int,
        weight: torch.Tensor | None = None,
        thresh: float = 0.7,
        min_kept_fraction: float = 1 / 16,
    ) -> None:
        super().__init__()
        if kind not in ("ce", "ohem", "weighted"):
            raise ValueError(f"unknown loss {kind!r}: use ce, ohem or weighted")
        if kind == "weighted" and weight is None:
            raise ValueError("the weighted loss needs class weights")
        self.kind = kind
        self.ignore_index = ignore_index
        self.register_buffer("weight", weight if kind == "weighted" else None)
        self.thresh = -float(np.log(thresh))  # loss above this <=> probability below thresh
        self.min_kept_fraction = min_kept_fraction

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over the labelled pixels; 0 (with no gradient) when every pixel is ignored, as in a
        batch of unlabelled frames, where a mean over nothing would be NaN."""
        valid = target.reshape(-1) != self.ignore_index
        if not valid.any():
            return logits.sum() * 0.0
        if self.kind != "ohem":
            return F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index)
        loss = F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction="none").reshape(-1)
        loss = loss[valid]
        min_kept = max(1, int(self.min_kept_fraction * loss.numel()))
        hard = loss[loss > self.thresh]
        if hard.numel() < min_kept:
            hard = loss.topk(min_kept).values
        return hard.mean()


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor,
                      temperature: float = 1.0) -> torch.Tensor:
    """KL(teacher || student) per pixel at ``temperature`` (scaled by T^2), averaged over the pixels
    where ``mask`` (N, H, W) is true. ``teacher`` holds logits for the student's classes, (N, C, H, W)."""
    t = temperature
    log_s = F.log_softmax(student / t, dim=1)
    log_t = F.log_softmax(teacher / t, dim=1)
    kl = (log_t.exp() * (log_t - log_s)).sum(1)
    if not mask.any():
        return student.sum() * 0.0
    return kl[mask].mean() * t * t
