"""Batch mixing for training: CutMix for segmentation (Yun et al. 2019; French et al. 2020).

A rectangle of another image of the same batch is pasted into an image, together with the same
rectangle of its label map, teacher logits and distillation mask, so every target still describes
its pixels: objects appear on other streets and at other places than the training images show
them. (On GhostNet's leave-one-sequence-out CamVid run it did not raise the held-out score; see
weights/README.md.) Works on the augmented numpy batch, one seeded generator per step, so runs
stay reproducible and resumable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import numpy as np


@dataclass(frozen=True)
class MixBatch:
    images: np.ndarray  # B x H x W x 3
    labels: np.ndarray  # B x H x W
    masks: np.ndarray  # B x H x W, where distillation applies
    soft: np.ndarray | None = None  # B x H x W x K teacher logits


def cut_box(rng: np.random.Generator, h: int, w: int, area: tuple[float, float]) -> tuple[int, int, int, int]:
    """A random rectangle (y0, y1, x0, x1) covering a fraction in ``area`` of an h x w image, its
    aspect ratio between 1:2 and 2:1."""
    a = float(rng.uniform(*area)) * h * w
    r = math.exp(float(rng.uniform(math.log(0.5), math.log(2.0))))  # width / height
    bh = min(h, max(1, round(math.sqrt(a / r))))
    bw = min(w, max(1, round(a / bh)))
    y0 = int(rng.integers(0, h - bh + 1))
    x0 = int(rng.integers(0, w - bw + 1))
    return y0, y0 + bh, x0, x0 + bw


def cutmix(batch: MixBatch, rng: np.random.Generator, prob: float,
           area: tuple[float, float] = (0.15, 0.5)) -> MixBatch:
    """Each image, with probability ``prob``, gets a rectangle of another image of the batch (each
    image's partner differs from it; partners are read before any pasting). A batch of one is
    returned unchanged."""
    n, h, w = batch.labels.shape
    if n < 2 or prob <= 0:
        return batch
    partner = (np.arange(n) + int(rng.integers(1, n))) % n
    chosen = rng.random(n) < prob
    boxes = [cut_box(rng, h, w, area) for _ in range(n)]
    given = {f.name: getattr(batch, f.name) for f in fields(batch) if getattr(batch, f.name) is not None}
    mixed = {name: a.copy() for name, a in given.items()}
    for i in np.flatnonzero(chosen):
        y0, y1, x0, x1 = boxes[i]
        for name, src in given.items():
            mixed[name][i, y0:y1, x0:x1] = src[partner[i], y0:y1, x0:x1]
    return replace(batch, **mixed)
