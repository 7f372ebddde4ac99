"""Distillation targets: a teacher's class logits on every training image, computed once.

A single view gives the teacher's own logits. Several views (``scales``, ``flip``) give the log of
the teacher's class probabilities averaged over the views (each view's logits resized back to the
image and, for the mirrored view, mirrored back): a stronger teacher for the price of more teacher
passes, paid once per run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UsageError
from ..infer.segmenter import Segmenter
from ..zoo.pretrained import Dataset


def teacher_targets(
    name: str,
    images: Sequence[np.ndarray],
    dataset: Dataset,
    device: torch.device,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    log: Callable[[str], None] | None = None,
) -> list[np.ndarray]:
    """Logits of teacher ``name`` for ``dataset``'s classes, per image at its size (HxWxC float16).

    ``scales`` multiply the teacher's own input size; ``flip`` adds the mirrored image of each.
    """
    first = Segmenter(name, device=str(device))
    n = dataset.scored
    if tuple(c.lower() for c in first.cfg.dataset.classes[:n]) != tuple(c.lower() for c in dataset.classes):
        raise UsageError(f"teacher {first.name} has other classes than the model being trained")
    if not scales or any(s <= 0 for s in scales):
        raise UsageError(f"teacher scales must be positive, got {list(scales)}")
    w, h = first.size
    views = [first if s == 1.0 else Segmenter(name, size=(round(w * s), round(h * s)), device=str(device))
             for s in scales]
    mirrors = (False, True) if flip else (False,)
    if log:
        sizes = ", ".join(f"{v.size[0]}x{v.size[1]}" for v in views)
        log(f"computing {first.name}'s logits on {len(images)} training images for distillation "
            f"({sizes}{', and mirrored' if flip else ''})")
    out = []
    with torch.inference_mode():
        for img in images:
            per_view = []
            for seg in views:
                for mirror in mirrors:
                    x = np.ascontiguousarray(img[:, ::-1]) if mirror else img
                    logits = seg.full_logits(seg.infer(seg.preprocess(seg.to_device([x]))))[:, :n].float()
                    logits = F.interpolate(logits, size=img.shape[:2], mode="bilinear", align_corners=False)
                    per_view.append(logits.flip(3) if mirror else logits)
            if len(per_view) == 1:
                target = per_view[0]
            else:
                target = torch.stack([torch.softmax(v, 1) for v in per_view]).mean(0).log()
            out.append(target[0].permute(1, 2, 0).cpu().numpy().astype(np.float16))
    return out
