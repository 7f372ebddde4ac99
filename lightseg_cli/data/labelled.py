"""Labelled image sets for ``eval`` and ``train``.

Two layouts are accepted:

* a list file of ``image label`` pairs, paths relative to the list's folder (the CamVid/SegNet
  format: ``train/0001TP_006690.png trainannot/0001TP_006690.png``);
* a folder with ``images/`` and ``labels/`` whose files are paired by stem.

Labels are single-channel images whose pixel values are class ids; images are read with the
package's one image reader (``io.images.read_rgb``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class Sample:
    image: Path
    label: Path


def read_label(path: Path) -> np.ndarray:
    lab = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if lab is None:
        raise DataError(f"{path}: cannot read as a label image")
    if lab.ndim == 3:
        raise DataError(f"{path}: label images must be single-channel class ids, got {lab.shape[2]} channels")
    return lab.astype(np.uint8) if lab.dtype != np.uint8 else lab


def _from_list(list_file: Path) -> list[Sample]:
    root = list_file.parent
    samples = []
    for n, line in enumerate(list_file.read_text().splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) != 2:
            raise DataError(f"{list_file}:{n}: expected 'image label', got {line.strip()!r}")
        samples.append(Sample(root / parts[0], root / parts[1]))
    return samples


def _from_folder(folder: Path) -> list[Sample]:
    images, labels = folder / "images", folder / "labels"
    if not images.is_dir() or not labels.is_dir():
        raise DataError(f"{folder}: expected a list file, or a folder with images/ and labels/")
    by_stem = {p.stem: p for p in labels.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    samples, missing = [], []
    for img in sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if img.stem in by_stem:
            samples.append(Sample(img, by_stem[img.stem]))
        else:
            missing.append(img.name)
    if missing:
        raise DataError(f"{labels}: no label for {len(missing)} image(s), e.g. {missing[0]}")
    return samples


def load_samples(path: str | Path) -> list[Sample]:
    """Samples of a list file or an images/labels folder; checks that every file exists."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    samples = _from_folder(p) if p.is_dir() else _from_list(p)
    if not samples:
        raise DataError(f"{p}: no labelled images found")
    for s in samples:
        for f in (s.image, s.label):
            if not f.is_file():
                raise DataError(f"{p}: listed file {f} does not exist")
    return samples
