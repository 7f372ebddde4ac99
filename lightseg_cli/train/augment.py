"""Training-time augmentation on uint8 RGB images and their label maps (OpenCV, CPU).

Random scale, then a random crop to the training size (padding with the ignore label where the
scaled image is smaller), horizontal flip, and brightness / contrast / saturation jitter.
Each sample gets its own seeded generator, so a run is reproducible and resumable.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentCfg:
    crop: tuple[int, int]  # (w, h)
    scale: tuple[float, float] = (0.5, 2.0)  # relative to ``base`` (or to the image)
    base: tuple[int, int] | None = None  # the network's full-image input size (w, h)
    flip: bool = True
    jitter: float = 0.3  # max relative change of brightness, contrast and saturation
    ignore_index: int = 255


def _jitter(img: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    x = img.astype(np.float32)
    for op in rng.permutation(3):
        f = float(rng.uniform(1 - amount, 1 + amount))
        if op == 0:  # brightness
            x *= f
        elif op == 1:  # contrast around the mean grey level
            m = float(x.mean())
            x = (x - m) * f + m
        else:  # saturation: blend with the grey image
            grey = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            x = (x - grey[..., None]) * f + grey[..., None]
    return np.clip(x, 0, 255)


def augment(
    img: np.ndarray, lab: np.ndarray, rng: np.random.Generator, cfg: AugmentCfg, soft: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Returns a float32 HxWx3 image (0..255), a uint8 label map and, when given, the teacher's
    HxWxK logits moved the same way; all of size ``cfg.crop``. ``soft`` draws no random numbers,
    so distillation does not change the augmentation."""
    cw, ch = cfg.crop
    s = float(rng.uniform(*cfg.scale))
    bw, bh = cfg.base or (lab.shape[1], lab.shape[0])
    nw, nh = max(1, round(bw * s)), max(1, round(bh * s))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    lab = cv2.resize(lab, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if soft is not None:
        soft = cv2.resize(soft.astype(np.float32), (nw, nh), interpolation=cv2.INTER_LINEAR)
    if nw < cw or nh < ch:
        pw, ph = max(cw - nw, 0), max(ch - nh, 0)
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        lab = cv2.copyMakeBorder(lab, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=cfg.ignore_index)
        if soft is not None:  # padding is ignored by the loss (its label is the ignore index)
            soft = np.pad(soft, ((0, ph), (0, pw), (0, 0)))
        nh, nw = lab.shape
    y = int(rng.integers(0, nh - ch + 1))
    x = int(rng.integers(0, nw - cw + 1))
    img, lab = img[y : y + ch, x : x + cw], lab[y : y + ch, x : x + cw]
    if soft is not None:
        soft = soft[y : y + ch, x : x + cw]
    if cfg.flip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
        if soft is not None:
            soft = soft[:, ::-1]
    out = _jitter(img, rng, cfg.jitter) if cfg.jitter > 0 else img.astype(np.float32)
    return np.ascontiguousarray(out), np.ascontiguousarray(lab), None if soft is None else np.ascontiguousarray(soft)
