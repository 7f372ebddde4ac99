"""Distillation targets: a teacher's class logits on every training image (and unlabelled frame),
computed once.

A single view gives the teacher's own logits. Several views (``scales``, ``flip``) give the log of
the teacher's class probabilities averaged over the views (each view's logits resized back to the
image and, for the mirrored view, mirrored back): a stronger teacher for the price of more teacher
passes, paid once per run. With a ``cache`` file (the trainer keeps one in its run folder) the
targets are kept on disk and reused by a ``--resume`` of the same run when the teacher, its views,
its weights and the images are the same (the trainer keeps one file for the labelled images and
one for the unlabelled frames, so each set is reused on its own).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..infer.segmenter import Segmenter
from ..io import atomic
from ..zoo import weights as store
from ..zoo.pretrained import Dataset


class Teacher:
    """Teacher ``name`` for ``dataset``'s classes, run at its views: ``scales`` multiply its own
    input size, ``flip`` adds the mirrored image of each."""

    def __init__(self, name: str, dataset: Dataset, device: torch.device, scales: Sequence[float] = (1.0,),
                 flip: bool = False) -> None:
        first = Segmenter(name, device=str(device))
        self.classes = dataset.scored
        if tuple(c.lower() for c in first.cfg.dataset.classes[:self.classes]) != tuple(
                c.lower() for c in dataset.classes):
            raise UsageError(f"teacher {first.name} has other classes than the model being trained")
        if not scales or any(s <= 0 for s in scales):
            raise UsageError(f"teacher scales must be positive, got {list(scales)}")
        self.first = first
        self.spec = name  # a checkpoint's path, where ``first.name`` is only its stem
        self.device = device
        self.scales = tuple(scales)
        self.flip = flip
        self._views: list[Segmenter] | None = None

    @property
    def views(self) -> list[Segmenter]:
        """One segmenter per scale, built when targets are first computed (not for cached ones)."""
        if self._views is None:
            w, h = self.first.size
            self._views = [self.first if s == 1.0 else Segmenter(self.spec, size=(round(w * s), round(h * s)),
                                                                  device=str(self.device)) for s in self.scales]
        return self._views

    def targets(self, images: Sequence[np.ndarray], log: Callable[[str], None] | None = None,
                cache: Path | None = None, what: str = "training images") -> list[np.ndarray]:
        """Logits per image at its size (HxWxC float16); ``cache`` is a ``.npy`` file the targets are
        read from when its key (teacher, weights, views, these images) matches, else written to."""
        key = _cache_key(self.first, images, self.scales, self.flip)
        if cache is not None and (cached := _load(cache, key, images)) is not None:
            if log:
                log(f"distillation targets from {cache}")
            return cached
        if log:
            sizes = ", ".join(f"{v.size[0]}x{v.size[1]}" for v in self.views)
            log(f"computing {self.first.name}'s logits on {len(images)} {what} for distillation "
                f"({sizes}{', and mirrored' if self.flip else ''})")
        with torch.inference_mode():
            out = [self._target(img) for img in images]
        if cache is not None:
            _save(cache, key, out)
        return out

    def _target(self, img: np.ndarray) -> np.ndarray:
        per_view = [view_logits(seg, img, self.classes, mirror)
                    for seg in self.views for mirror in ((False, True) if self.flip else (False,))]
        if len(per_view) == 1:
            target = per_view[0]
        else:
            target = torch.stack([torch.softmax(v, 1) for v in per_view]).mean(0).log()
        return target[0].permute(1, 2, 0).cpu().numpy().astype(np.float16)


def view_logits(seg: Segmenter, img: np.ndarray, classes: int, mirror: bool = False) -> torch.Tensor:
    """``seg``'s first ``classes`` logits on ``img`` (or its mirror image, mirrored back), resized to
    the image: 1xCxHxW float32."""
    x = np.ascontiguousarray(img[:, ::-1]) if mirror else img
    logits = seg.full_logits(seg.infer(seg.preprocess(seg.to_device([x]))))[:, :classes].float()
    logits = F.interpolate(logits, size=img.shape[:2], mode="bilinear", align_corners=False)
    return logits.flip(3) if mirror else logits


def teacher_targets(
    name: str,
    images: Sequence[np.ndarray],
    dataset: Dataset,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    log: Callable[[str], None] | None = None,
    cache: Path | None = None,
) -> list[np.ndarray]:
    """:meth:`Teacher.targets` of one set of images."""
    return Teacher(name, dataset, device, scales, flip).targets(images, log, cache)


def _cache_key(teacher: Segmenter, images: Sequence[np.ndarray], scales: Sequence[float], flip: bool) -> str:
    st = store.status_of(teacher.cfg)
    h = hashlib.sha256(f"{teacher.name}|{st.file.sha256 if st else ''}|{list(scales)}|{flip}".encode())
    for img in images:
        h.update(np.ascontiguousarray(img).data)
    return h.hexdigest()


def _load(cache: Path, key: str, images: Sequence[np.ndarray]) -> list[np.ndarray] | None:
    try:
        if json.loads(cache.with_suffix(".json").read_text())["key"] != key:
            return None
        flat = np.load(cache, mmap_mode="r")
    except (OSError, ValueError, KeyError):
        return None
    out, at = [], 0
    for img in images:
        n = img.shape[0] * img.shape[1]
        out.append(np.array(flat[at:at + n]).reshape(img.shape[0], img.shape[1], -1))
        at += n
    return out if at == len(flat) else None


def _save(cache: Path, key: str, targets: list[np.ndarray]) -> None:
    """Pixels of all images in one array (images may differ in size); the key in a JSON beside it,
    written last, so an interrupted save is never read back."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.with_suffix(".json").unlink(missing_ok=True)
    with atomic.replacing(cache) as tmp, open(tmp, "wb") as f:
        np.save(f, np.concatenate([t.reshape(-1, t.shape[-1]) for t in targets]))
    atomic.write_text(cache.with_suffix(".json"), json.dumps({"key": key}))
