"""Class maps: run or fine-tune a model trained on one label space as a model of another.

A map sends each source class (e.g. Cityscapes' 19) to at most one target class (CamVid's 11).
The mapped network's logit for a target class is the log of the summed probabilities of its source
classes (a log-sum-exp over them), so

* the arg-max of the mapped logits is the most probable target class (the mapped model is useful
  as it is: ``--classes-as camvid``);
* fine-tuning with cross-entropy on target labels trains the source network *unchanged*: no layer
  is re-initialised, not even ESPNetv2's class-wide decoder, and step 0 scores like the mapped model;
* the map is one fixed 0/1 matrix, applied at any resolution (before the final logit resize, so it
  costs a 1x1 convolution on the low-resolution logits).

Weights of a mapped model are stored in the source network's format (no extra tensors); its
``ModelCfg`` names the map (``class_map = "cityscapes:camvid"``) and carries the target label space.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UsageError
from .datasets import CAMVID11, CITYSCAPES, DATASETS
from .pretrained import Dataset, ModelCfg

# target class -> source classes. Cityscapes' "background" (train id 255 in the authors' code,
# channel 19 here) maps to nothing: every CamVid pixel is one of its 11 classes or void.
_CITYSCAPES_TO_CAMVID = {
    "sky": ("sky",),
    "building": ("building", "wall"),
    "pole": ("pole",),
    "road": ("road",),
    "pavement": ("sidewalk",),
    "tree": ("vegetation", "terrain"),
    "sign": ("traffic light", "traffic sign"),
    "fence": ("fence",),
    "car": ("car", "truck", "bus", "train"),
    "pedestrian": ("person",),
    "bicyclist": ("rider", "bicycle", "motorcycle"),
}

_MAPS: dict[tuple[str, str], tuple[Dataset, Dataset, dict[str, tuple[str, ...]]]] = {
    ("cityscapes", "camvid"): (CITYSCAPES, CAMVID11, _CITYSCAPES_TO_CAMVID),
}


@dataclass(frozen=True)
class ClassMap:
    """Which source classes make up each target class."""

    name: str  # "source:target"
    source: Dataset
    target: Dataset
    groups: tuple[tuple[int, ...], ...]  # per target class, the source class ids summed into it

    def matrix(self) -> torch.Tensor:
        """``(target, source)`` 0/1 matrix."""
        m = torch.zeros(len(self.groups), len(self.source.classes))
        for t, ids in enumerate(self.groups):
            m[t, list(ids)] = 1.0
        return m

    def lookup(self) -> list[int | None]:
        """Per source class, its target class (None when it maps to none)."""
        out: list[int | None] = [None] * len(self.source.classes)
        for t, ids in enumerate(self.groups):
            for s in ids:
                out[s] = t
        return out


def class_map_names() -> list[str]:
    return [f"{s}:{t}" for s, t in _MAPS]


def has_class_map(source: str, target: str) -> bool:
    """Whether a class map leads from label space ``source`` to ``target`` (dataset names)."""
    return (source.lower(), target.lower()) in _MAPS


def get_class_map(name: str) -> ClassMap:
    """The map called ``source:target`` (e.g. ``cityscapes:camvid``)."""
    source, _, target = name.lower().partition(":")
    try:
        src, tgt, table = _MAPS[(source, target)]
    except KeyError:
        raise UsageError(f"no class map {name!r}; known: {', '.join(class_map_names())}") from None
    index = {c: i for i, c in enumerate(src.classes)}
    groups = tuple(tuple(index[c] for c in table[cls]) for cls in tgt.classes)
    return ClassMap(name=f"{source}:{target}", source=src, target=tgt, groups=groups)


def classes_as(cfg: ModelCfg, target: str) -> ModelCfg:
    """``cfg`` run in the label space ``target`` (a dataset name) through the class map from its own.

    Example:
        >>> classes_as(get_cfg("espnetv2-s2.0-cityscapes"), "camvid").dataset.classes[:3]
        ('sky', 'building', 'pole')
    """
    target = target.lower()
    if target not in DATASETS:
        raise UsageError(f"unknown label space {target!r}; known: {', '.join(sorted(DATASETS))}")
    if cfg.class_map:
        raise UsageError(f"{cfg.name} already predicts {cfg.dataset.name} classes through {cfg.class_map}")
    if cfg.dataset.name == target:
        return cfg
    cmap = get_class_map(f"{cfg.dataset.name}:{target}")
    return replace(cfg, name=f"{cfg.name}@{target}", dataset=cmap.target, class_map=cmap.name)


def source_cfg(cfg: ModelCfg) -> ModelCfg:
    """The configuration of the network a mapped model runs (its own label space, no map)."""
    if not cfg.class_map:
        return cfg
    return replace(cfg, dataset=get_class_map(cfg.class_map).source, class_map=None)


class MappedLogits(nn.Module):
    """Source logits ``(N, S, h, w)`` -> target logits ``(N, T, h, w)``: log of summed probabilities."""

    def __init__(self, cmap: ClassMap) -> None:
        super().__init__()
        self.register_buffer("weight", cmap.matrix()[:, :, None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top = x.amax(1, keepdim=True)
        summed = F.conv2d(torch.exp(x - top), self.weight.to(x.dtype))
        return torch.log(summed.clamp_min(torch.finfo(x.dtype).tiny)) + top


class ClassMapped(nn.Module):
    """A network followed by a class map. ``net`` holds every weight (in the source format)."""

    def __init__(self, net: nn.Module, cmap: ClassMap) -> None:
        super().__init__()
        self.net = net
        self.head = MappedLogits(cmap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.net(x))


def weight_module(model: nn.Module) -> nn.Module:
    """The module whose state dict is the model's weight file (the inner net of a mapped model)."""
    return model.net if isinstance(model, ClassMapped) else model
