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
from ..zoo.classmap import classes_as, has_class_map
from ..zoo.local import get_cfg
from ..zoo.pretrained import Dataset, ModelCfg


class Teacher:
    """The teacher ``names`` (one model, or an ensemble) for ``dataset``'s classes, each run at the
    same views: ``scales`` multiply a model's own input size, ``flip`` adds the mirrored image.

    A model with another label space teaches through the class map to ``dataset``'s (e.g. the
    Cityscapes ESPNetv2 for a CamVid student, as ``--classes-as camvid`` would run it). An ensemble
    averages its members' view-averaged probabilities, weighted by ``weights`` (default: equal).
    """

    def __init__(self, names: str | Sequence[str], dataset: Dataset, device: torch.device,
                 scales: Sequence[float] = (1.0,), flip: bool = False,
                 weights: Sequence[float] | None = None) -> None:
        specs = [names] if isinstance(names, str) else list(names)
        if not specs:
            raise UsageError("a teacher needs at least one model")
        if weights is None:
            weights = [1.0] * len(specs)
        if len(weights) != len(specs) or any(w <= 0 for w in weights):
            raise UsageError(f"teacher weights must be {len(specs)} positive numbers, one per teacher; "
                             f"got {list(weights)}")
        if not scales or any(s <= 0 for s in scales):
            raise UsageError(f"teacher scales must be positive, got {list(scales)}")
        self.classes = dataset.scored
        # Configs, not names: a checkpoint is read once, and each view keeps its weights' path.
        self.specs = [_in_label_space(get_cfg(spec), dataset) for spec in specs]
        self.members = [Segmenter(spec, device=str(device)) for spec in self.specs]
        for seg in self.members:
            if tuple(c.lower() for c in seg.cfg.dataset.classes[:self.classes]) != tuple(
                    c.lower() for c in dataset.classes):
                raise UsageError(f"teacher {seg.name} has other classes than the model being trained, "
                                 "and no class map leads from them to its classes")
        self.weights = [w / sum(weights) for w in weights]
        self.device = device
        self.scales = tuple(scales)
        self.flip = flip
        self._views: list[list[Segmenter]] | None = None

    @property
    def first(self) -> Segmenter:
        return self.members[0]

    @property
    def views(self) -> list[list[Segmenter]]:
        """Per member, one segmenter per scale; built when targets are first computed (not for cached ones)."""
        if self._views is None:
            self._views = []
            for spec, seg in zip(self.specs, self.members):
                w, h = seg.size
                self._views.append([seg if s == 1.0 else Segmenter(spec, size=(round(w * s), round(h * s)),
                                                                   device=str(self.device)) for s in self.scales])
        return self._views

    @property
    def name(self) -> str:
        return " + ".join(seg.name for seg in self.members)

    def targets(self, images: Sequence[np.ndarray], log: Callable[[str], None] | None = None,
                cache: Path | None = None, what: str = "training images") -> list[np.ndarray]:
        """Logits per image at its size (HxWxC float16); ``cache`` is a ``.npy`` file the targets are
        read from when its key (teachers, weights, views, these images) matches, else written to."""
        key = _cache_key(self.members, self.weights, images, self.scales, self.flip)
        if cache is not None and (cached := _load(cache, key, images)) is not None:
            if log:
                log(f"distillation targets from {cache}")
            return cached
        if log:
            sizes = "; ".join(", ".join(f"{v.size[0]}x{v.size[1]}" for v in views) for views in self.views)
            share = "" if len(self.members) == 1 else " weighted " + ":".join(f"{w:.2g}" for w in self.weights)
            log(f"computing {self.name}'s logits on {len(images)} {what} for distillation "
                f"({sizes}{', and mirrored' if self.flip else ''}{share})")
        with torch.inference_mode():
            out = [self._target(img) for img in images]
        if cache is not None:
            _save(cache, key, out)
        return out

    def _target(self, img: np.ndarray) -> np.ndarray:
        mirrors = (False, True) if self.flip else (False,)
        if len(self.members) == 1 and len(self.scales) == 1 and not self.flip:
            target = view_logits(self.first, img, self.classes)
        else:
            target = sum(w * torch.stack([torch.softmax(view_logits(seg, img, self.classes, m), 1)
                                          for seg in views for m in mirrors]).mean(0)
                         for w, views in zip(self.weights, self.views)).log()
        return target[0].permute(1, 2, 0).cpu().numpy().astype(np.float16)


def _in_label_space(cfg: ModelCfg, dataset: Dataset) -> ModelCfg:
    """``cfg`` as it predicts ``dataset``'s classes: itself, or mapped when its label space has a class
    map to ``dataset``'s."""
    if cfg.dataset.name == dataset.name or cfg.class_map or not has_class_map(cfg.dataset.name, dataset.name):
        return cfg
    return classes_as(cfg, dataset.name)


def view_logits(seg: Segmenter, img: np.ndarray, classes: int, mirror: bool = False) -> torch.Tensor:
    """``seg``'s first ``classes`` logits on ``img`` (or its mirror image, mirrored back), resized to
    the image: 1xCxHxW float32."""
    x = np.ascontiguousarray(img[:, ::-1]) if mirror else img
    logits = seg.full_logits(seg.infer(seg.preprocess(seg.to_device([x]))))[:, :classes].float()
    logits = F.interpolate(logits, size=img.shape[:2], mode="bilinear", align_corners=False)
    return logits.flip(3) if mirror else logits


def teacher_targets(
    name: str | Sequence[str],
    images: Sequence[np.ndarray],
    dataset: Dataset,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    log: Callable[[str], None] | None = None,
    cache: Path | None = None,
    weights: Sequence[float] | None = None,
) -> list[np.ndarray]:
    """:meth:`Teacher.targets` of one set of images."""
    return Teacher(name, dataset, device, scales, flip, weights).targets(images, log, cache)


def _cache_key(members: Sequence[Segmenter], weights: Sequence[float], images: Sequence[np.ndarray],
               scales: Sequence[float], flip: bool) -> str:
    who = []
    for seg, w in zip(members, weights):
        st = store.status_of(seg.cfg)
        who.append(f"{seg.name}|{st.file.sha256 if st else ''}" + (f"|{w:.6f}" if len(members) > 1 else ""))
    h = hashlib.sha256(f"{'+'.join(who)}|{list(scales)}|{flip}".encode())
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
