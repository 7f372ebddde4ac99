"""What a zoo entry knows about its network and weights: one flat, frozen dataclass per model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ChannelOrder = Literal["rgb", "bgr"]
ResizeMode = Literal["bilinear", "bilinear-aa"]


@dataclass(frozen=True)
class Preprocess:
    """How a frame becomes the network input.

    ``mean`` and ``std`` are per input channel *in pixel units (0..255)*, in the network's channel
    order: ``x = (pixel - mean) / std``. Both the authors' conventions reduce to this form
    (ESPNet: ``(p - m) / s / 255``, i.e. std scaled by 255; ESPNetv2: ``(p / 255 - m) / s``).

    ``resize`` is the filter used to bring the frame to the network size: ``"bilinear"`` (plain,
    like OpenCV's INTER_LINEAR, what the ESPNet authors used) or ``"bilinear-aa"`` (antialiased
    triangle filter, like PIL's BILINEAR, what the ESPNetv2 authors used).
    """

    order: ChannelOrder
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: ResizeMode = "bilinear-aa"


@dataclass(frozen=True)
class Dataset:
    """Label space of a model: class names and colours, and how many classes are scored."""

    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]
    scored: int  # classes 0..scored-1 count in mIoU; higher ids (void, background) are ignored

    def __post_init__(self) -> None:
        if len(self.palette) != len(self.classes):
            raise ValueError(f"{self.name}: {len(self.classes)} classes but {len(self.palette)} colours")
        if not 0 < self.scored <= len(self.classes):
            raise ValueError(f"{self.name}: scored={self.scored} outside 1..{len(self.classes)}")


@dataclass(frozen=True)
class ModelCfg:
    """A zoo entry.

    ``weights`` is the file's path relative to a weights root (``espnet/...``, ``espnetv2/...``,
    ``lpsnet/...``); its sha256, upstream URL and licence come from ``weights/manifest.json``.
    """

    name: str
    arch: str
    arch_args: dict[str, Any]
    dataset: Dataset
    input_size: tuple[int, int]  # native (width, height)
    preprocess: Preprocess
    weights: str
    size_divisor: int = 1
    description: str = ""
    paper: str = ""
    class_map: str | None = None  # "source:target": the network predicts source classes, mapped (zoo/classmap.py)
    pretrained_backbone: str | None = None  # ImageNet weights training starts from (zoo/backbones.py)

    @property
    def num_classes(self) -> int:
        return len(self.dataset.classes)
