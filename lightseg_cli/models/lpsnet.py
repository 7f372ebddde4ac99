"""LPS-Net (Zhang et al., "Lightweight and Progressively-Scalable Networks for Semantic
Segmentation", 2022).

A multi-path network of plain 3x3 conv-BN-ReLU blocks, built for GPU/NPU-friendly inference.
Each path first resizes the image by its own ratio ``R`` and runs a 5-stage stack (stage depths
``B``, widths ``C``; the first block of stages 1-4 has stride 2, so features end at 1/16 of the
path's input). The paths share structure but not weights. After stages 3 and 4 every path adds
the others, bilinearly resized to its own size (Bilateral interaction for two paths). After stage
5 the other paths are resized to the first (highest-resolution) one and concatenated; a 1x1 conv
gives the class logits, bilinearly upsampled to the input size.

The paper's configurations are :data:`CONFIGS` ``"s"``, ``"m"`` and ``"l"``. At inference time
each conv-BN pair folds into one biased conv (see ``layers.fold_batchnorm``), which is the
paper's "deploy" form.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LogitResize, resize_antialiased

_STRIDES = (2, 2, 2, 2, 1)


@dataclass(frozen=True)
class LPSNetConfig:
    depth: tuple[int, int, int, int, int]
    width: tuple[int, int, int, int, int]
    ratios: tuple[float, ...]


CONFIGS: dict[str, LPSNetConfig] = {
    "s": LPSNetConfig((1, 3, 3, 10, 10), (8, 24, 48, 96, 96), (3 / 4, 1 / 4)),
    "m": LPSNetConfig((1, 3, 3, 10, 10), (8, 24, 48, 96, 96), (1.0, 1 / 4)),
    "l": LPSNetConfig((1, 3, 3, 10, 10), (8, 24, 64, 160, 160), (1.0, 1 / 4)),
}


def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def _path(depth: tuple[int, ...], width: tuple[int, ...]) -> nn.ModuleList:
    """The five stages of one path."""
    stages = nn.ModuleList()
    c_in = 3
    for n, c, s in zip(depth, width, _STRIDES):
        stages.append(nn.Sequential(*(_conv_bn_relu(c_in if i == 0 else c, c, s if i == 0 else 1) for i in range(n))))
        c_in = c
    return stages


def _resize(x: torch.Tensor, size: tuple[int, int] | torch.Size) -> torch.Tensor:
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class LPSNet(nn.Module):
    """LPS-Net with depth ``B``, width ``C`` and path resolution ratios ``R`` (largest first)."""

    def __init__(self, num_classes: int, config: LPSNetConfig) -> None:
        super().__init__()
        if len(config.depth) != 5 or len(config.width) != 5:
            raise ValueError("LPS-Net needs five stage depths and five widths")
        if not config.ratios or any(r <= 0 for r in config.ratios):
            raise ValueError(f"LPS-Net resolution ratios must be positive, got {config.ratios}")
        self.config = config
        self.ratios = tuple(sorted(config.ratios, reverse=True))
        self.paths = nn.ModuleList(_path(config.depth, config.width) for _ in self.ratios)
        self.head = nn.Conv2d(config.width[-1] * len(self.ratios), num_classes, 1)
        self.logit_resize = LogitResize(align_corners=False)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    @staticmethod
    def _interact(xs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each path adds every other path resized to its size."""
        return [x + sum(_resize(o, x.shape[2:]) for j, o in enumerate(xs) if j != i) for i, x in enumerate(xs)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        xs = [
            x if r == 1.0 else resize_antialiased(x, (max(1, int(h * r)), max(1, int(w * r))))
            for r in self.ratios
        ]
        for stage in range(5):
            xs = [path[stage](xi) for path, xi in zip(self.paths, xs)]
            if len(xs) > 1 and stage in (2, 3):
                xs = self._interact(xs)
        top = xs[0]
        feats = torch.cat([top] + [_resize(o, top.shape[2:]) for o in xs[1:]], 1)
        return self.logit_resize(self.head(feats), (h, w))
