"""``lightseg eval``: mean IoU of a model over a labelled set."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .data.labelled import load_samples, read_label
from .infer.segmenter import Segmenter
from .io.images import read_rgb
from .metrics import ConfusionMatrix


@dataclass(frozen=True)
class EvalResult:
    model: str
    data: str
    images: int
    size: tuple[int, int]
    miou: float
    per_class: dict[str, float]
    pixel_accuracy: float
    seconds: float

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "data": self.data,
            "images": self.images,
            "size": list(self.size),
            "miou": self.miou,
            "per_class": self.per_class,
            "pixel_accuracy": self.pixel_accuracy,
            "seconds": round(self.seconds, 3),
        }


def evaluate(
    segmenter: Segmenter,
    data: str | Path,
    progress: Callable[[int, int], None] | None = None,
    on_prediction: Callable[[np.ndarray], None] | None = None,
) -> EvalResult:
    """Score ``segmenter`` on a list file or images/labels folder.

    Predictions are made at the segmenter's network size and resized (nearest) to each label's
    size. Label values outside the model's scored classes (e.g. CamVid 11 = void) are ignored.
    ``on_prediction`` receives each prediction as scored (to compare two ways of running a model).
    """
    samples = load_samples(data)
    ds = segmenter.cfg.dataset
    cm = ConfusionMatrix(ds.scored, segmenter.cfg.num_classes)
    t0 = time.perf_counter()
    for i, s in enumerate(samples):
        image, label = read_rgb(s.image), read_label(s.label)
        pred = segmenter([image])[0]
        if pred.shape != label.shape:
            pred = cv2.resize(pred, (label.shape[1], label.shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)
        cm.update(pred, label)
        if on_prediction:
            on_prediction(pred)
        if progress:
            progress(i + 1, len(samples))
    ious = cm.iou()
    return EvalResult(
        model=segmenter.name,
        data=str(data),
        images=len(samples),
        size=segmenter.size,
        miou=cm.miou(),
        per_class={name: (None if np.isnan(v) else float(v)) for name, v in zip(ds.classes, ious)},
        pixel_accuracy=cm.pixel_accuracy(),
        seconds=time.perf_counter() - t0,
    )
