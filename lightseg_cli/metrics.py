"""Segmentation scores: a confusion matrix accumulated over a whole split, and IoU from it."""

from __future__ import annotations

import numpy as np


class ConfusionMatrix:
    """Rows: target class, columns: predicted class. Targets outside ``0..scored-1`` are ignored.

    Predictions may use more ids than are scored (a network's void or background output); such a
    prediction on a scored pixel counts against that pixel's class (a false negative) and is no
    class's false positive.
    """

    def __init__(self, scored: int, predicted: int | None = None) -> None:
        self.scored = scored
        self.n = max(scored, predicted or scored, 1)
        self.m = np.zeros((self.n, self.n), dtype=np.int64)

    def update(self, pred: np.ndarray, target: np.ndarray) -> None:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and label {target.shape} differ in size")
        t = target.reshape(-1).astype(np.int64)
        p = pred.reshape(-1).astype(np.int64)
        keep = (t < self.scored) & (p < self.n)
        self.m += np.bincount(t[keep] * self.n + p[keep], minlength=self.n * self.n).reshape(self.n, self.n)

    def iou(self) -> np.ndarray:
        """Per scored class IoU (NaN for a class absent from both targets and predictions)."""
        tp = np.diag(self.m)[: self.scored].astype(np.float64)
        fn = self.m[: self.scored].sum(1) - tp
        fp = self.m[: self.scored, : self.scored].sum(0) - tp
        denom = tp + fp + fn
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(denom > 0, tp / denom, np.nan)

    def miou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        valid = self.m[: self.scored].sum()
        return float(np.diag(self.m)[: self.scored].sum() / valid) if valid else float("nan")
