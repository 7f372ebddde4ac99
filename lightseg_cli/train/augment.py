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


def _scaled_window(a: np.ndarray, size: tuple[int, int], box: tuple[int, int, int, int], nearest: bool) -> np.ndarray:
    """``cv2.resize(a, size)[y0:y1, x0:x1]`` without resizing what the crop throws away: only a
    source window slightly larger than the box is resized (same result up to rounding)."""
    h, w = a.shape[:2]
    nw, nh = size
    x0, y0, x1, y1 = box
    sx, sy = nw / w, nh / h
    u0, u1 = max(0, int(x0 / sx) - 1), min(w, int(np.ceil(x1 / sx)) + 1)
    v0, v1 = max(0, int(y0 / sy) - 1), min(h, int(np.ceil(y1 / sy)) + 1)
    part = a[v0:v1, u0:u1]
    rw, rh = max(1, round((u1 - u0) * sx)), max(1, round((v1 - v0) * sy))
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    out = cv2.resize(part, (rw, rh), interpolation=interp)
    ox, oy = round(x0 - u0 * sx), round(y0 - v0 * sy)
    out = out[oy : oy + (y1 - y0), ox : ox + (x1 - x0)]
    if out.shape[0] < y1 - y0 or out.shape[1] < x1 - x0:  # rounding at the far edge: repeat the border
        pads = ((0, y1 - y0 - out.shape[0]), (0, x1 - x0 - out.shape[1])) + ((0, 0),) * (out.ndim - 2)
        out = np.pad(out, pads, mode="edge")
    return out


def augment(
    img: np.ndarray, lab: np.ndarray, rng: np.random.Generator, cfg: AugmentCfg, soft: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Returns a float32 HxWx3 image (0..255), a uint8 label map and, when given, the teacher's
    HxWxK logits moved the same way; all of size ``cfg.crop``. ``soft`` draws no random numbers,
    so distillation does not change the augmentation.

    The image is scaled to ``base * s`` (s random in ``cfg.scale``), padded with the ignore label
    where it is smaller than the crop, and a random crop is taken; only the cropped window is
    actually resized."""
    cw, ch = cfg.crop
    s = float(rng.uniform(*cfg.scale))
    bw, bh = cfg.base or (lab.shape[1], lab.shape[0])
    nw, nh = max(1, round(bw * s)), max(1, round(bh * s))
    y = int(rng.integers(0, max(nh, ch) - ch + 1))
    x = int(rng.integers(0, max(nw, cw) - cw + 1))
    box = (x, y, min(x + cw, nw), min(y + ch, nh))  # the part of the crop inside the scaled image
    img = _scaled_window(img, (nw, nh), box, nearest=False)
    lab = _scaled_window(lab, (nw, nh), box, nearest=True)
    if soft is not None:
        soft = _scaled_window(soft.astype(np.float32), (nw, nh), box, nearest=False)
    ph, pw = ch - lab.shape[0], cw - lab.shape[1]
    if ph or pw:  # the scaled image is smaller than the crop: pad (the padding is ignored by the loss)
        img = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        lab = cv2.copyMakeBorder(lab, 0, ph, 0, pw, cv2.BORDER_CONSTANT, value=cfg.ignore_index)
        if soft is not None:
            soft = np.pad(soft, ((0, ph), (0, pw), (0, 0)))
    if cfg.flip and rng.random() < 0.5:
        img, lab = img[:, ::-1], lab[:, ::-1]
        if soft is not None:
            soft = soft[:, ::-1]
    out = _jitter(img, rng, cfg.jitter) if cfg.jitter > 0 else img.astype(np.float32)
    return np.ascontiguousarray(out), np.ascontiguousarray(lab), None if soft is None else np.ascontiguousarray(soft)
