"""The one image-file reader: what ``run`` decodes from image sources and ``eval``/``train`` read
from labelled sets."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..errors import ImageError


def read_rgb(path: Path) -> np.ndarray:
    """An image file as HxWx3 uint8 RGB, or :class:`ImageError` naming the file and saying why not.

    The file is decoded from its bytes, so names OpenCV's own file reader cannot open still work.
    """
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise ImageError(path, e.strerror or str(e)) from None
    return decode_rgb(data, path)


def decode_rgb(data: bytes | np.ndarray, path: Path) -> np.ndarray:
    """The bytes of an image file (read elsewhere, e.g. by Ray Data) as :func:`read_rgb` gives them."""
    data = np.frombuffer(data, dtype=np.uint8)
    if data.size == 0:
        raise ImageError(path, "empty file")
    img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if img is None:
        raise ImageError(path, "not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
