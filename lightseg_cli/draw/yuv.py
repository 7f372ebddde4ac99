"""I420 (yuv420p) images as OpenCV and FFmpeg lay them out: one ``(H * 3 / 2, W)`` uint8 array
holding the full-size Y plane, then the half-size U and V planes, for even H and W. This is what
the H.264 encoder takes, so an overlay drawn on these planes goes to it without a conversion.
Every colour here is converted the way ``cv2.COLOR_RGB2YUV_I420`` converts a frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def planes(i420: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes of one contiguous I420 image."""
    h, w = i420.shape[0] * 2 // 3, i420.shape[1]
    flat = i420.reshape(-1)  # a chroma plane need not fill whole rows of the array (H not a multiple of 4)
    quarter = h * w // 4
    u = flat[h * w : h * w + quarter].reshape(h // 2, w // 2)
    return i420[:h], u, flat[h * w + quarter :].reshape(h // 2, w // 2)

def palette(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(n, 3)`` uint8 RGB colours -> their Y, U and V values (``n`` each)."""
    n = len(rgb)
    blocks = np.repeat(np.repeat(rgb.reshape(1, n, 3), 2, axis=0), 2, axis=1)  # each colour a 2x2 block
    y, u, v = planes(cv2.cvtColor(np.ascontiguousarray(blocks), cv2.COLOR_RGB2YUV_I420))
    return y[0, ::2].copy(), u[0].copy(), v[0].copy()


def block(image: np.ndarray, mask: np.ndarray) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]:
    """An RGB image and its uint8 mask -> its Y, U and V planes and the masks of the full-size and
    the half-size planes (odd sides padded with masked-out pixels)."""
    h, w = image.shape[:2]
    ph, pw = h + h % 2, w + w % 2
    padded = np.zeros((ph, pw, 3), np.uint8)
    padded[:h, :w] = image
    full = np.zeros((ph, pw), np.uint8)
    full[:h, :w] = mask
    return planes(cv2.cvtColor(padded, cv2.COLOR_RGB2YUV_I420)), (full, np.ascontiguousarray(full[::2, ::2]))
