"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020).

A MobileNetV3-like stack of Ghost bottlenecks. A Ghost module makes half of its output channels
with an ordinary 1x1 convolution and the other half ("ghosts") from those with a cheap depth-wise
3x3; a bottleneck is an expanding Ghost module (ReLU), a strided depth-wise conv where the stage
downsamples, optional squeeze-excite (hard-sigmoid gate), and a linear Ghost module, plus a
shortcut (identity, or depth-wise + 1x1 where the shape changes). The rows of :data:`BLOCKS` are
the paper's Table 1; ``width`` scales every width (rounded to multiples of 4), 1.0 is the paper's
main model (5.2M parameters with its ImageNet head: a 1x1 conv to 960, pooling, a 1x1 conv to
1280 and the classifier).

``features(x)`` returns the outputs of the last blocks at strides 8, 16 and 32 (40, 112 and 160
channels at width 1.0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvBNAct, TappedBackbone, feature_taps, init_weights, make_divisible, stride_plan

# Per bottleneck, the paper's Table 1: (kernel of the depth-wise conv, expansion width, output width,
# squeeze-excite ratio, stride).
BLOCKS: tuple[tuple[int, int, int, float, int], ...] = (
    (3, 16, 16, 0.0, 1),
    (3, 48, 24, 0.0, 2),
    (3, 72, 24, 0.0, 1),
    (5, 72, 40, 0.25, 2),
    (5, 120, 40, 0.25, 1),
    (3, 240, 80, 0.0, 2),
    (3, 200, 80, 0.0, 1),
    (3, 184, 80, 0.0, 1),
    (3, 184, 80, 0.0, 1),
    (3, 480, 112, 0.25, 1),
    (3, 672, 112, 0.25, 1),
    (5, 672, 160, 0.25, 2),
    (5, 960, 160, 0.0, 1),
    (5, 960, 160, 0.25, 1),
    (5, 960, 160, 0.0, 1),
    (5, 960, 160, 0.25, 1),
)
_STEM = 16
_LAST = 960  # the 1x1 conv before pooling (ImageNet head)
_HEAD = 1280


class GhostModule(nn.Module):
    """``ceil(c_out / 2)`` channels from a 1x1 conv, the rest from a depth-wise 3x3 on those."""

    def __init__(self, c_in: int, c_out: int, relu: bool, dilation: int = 1) -> None:
        super().__init__()
        self.c_out = c_out
        init = math.ceil(c_out / 2)
        self.primary = ConvBNAct(c_in, init, 1, act=nn.ReLU(inplace=True) if relu else None)
        self.cheap = ConvBNAct(init, init, 3, dilation=dilation, groups=init,
                               act=nn.ReLU(inplace=True) if relu else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.primary(x)
        out = torch.cat([y, self.cheap(y)], 1)
        return out if out.shape[1] == self.c_out else out[:, : self.c_out]


class SqueezeExcite(nn.Module):
    """Global pool, 1x1 reduce (ReLU), 1x1 expand, hard-sigmoid gate."""

    def __init__(self, c: int, ratio: float) -> None:
        super().__init__()
        reduced = make_divisible(c * ratio, 4)
        self.reduce = nn.Conv2d(c, reduced, 1)
        self.expand = nn.Conv2d(reduced, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True))))
        return x * F.hardsigmoid(s)


class GhostBottleneck(nn.Module):
    def __init__(self, c_in: int, mid: int, c_out: int, k: int, stride: int, se: float, *,
                 downsample: bool, dilation: int = 1) -> None:
        """``downsample``: the block is a strided one in the paper (it keeps its depth-wise conv
        when an output stride below 32 runs it at ``stride`` 1 with ``dilation``)."""
        super().__init__()
        self.ghost1 = GhostModule(c_in, mid, relu=True, dilation=dilation)
        self.dw = ConvBNAct(mid, mid, k, stride, dilation=dilation, groups=mid) if downsample else None
        self.se = SqueezeExcite(mid, se) if se > 0 else None
        self.ghost2 = GhostModule(mid, c_out, relu=False, dilation=dilation)
        if c_in == c_out and stride == 1:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                ConvBNAct(c_in, c_in, k, stride, dilation=dilation, groups=c_in),
                ConvBNAct(c_in, c_out, 1),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ghost1(x)
        if self.dw is not None:
            y = self.dw(y)
        if self.se is not None:
            y = self.se(y)
        return self.ghost2(y) + self.shortcut(x)


class GhostNet(TappedBackbone):
    """GhostNet backbone, with the ImageNet head when ``num_classes > 0``."""

    def __init__(self, num_classes: int = 1000, width: float = 1.0, output_stride: int = 32,
                 dropout: float = 0.2) -> None:
        super().__init__()
        strides = [b[4] for b in BLOCKS]
        stem = make_divisible(_STEM * width, 4)
        self.stem = ConvBNAct(3, stem, 3, 2, act=nn.ReLU(inplace=True))
        blocks, c_in, widths = [], stem, []
        for (k, exp, c, se, nominal), (s, d) in zip(BLOCKS, stride_plan(strides, output_stride)):
            c_out = make_divisible(c * width, 4)
            blocks.append(GhostBottleneck(c_in, make_divisible(exp * width, 4), c_out, k, s, se,
                                          downsample=nominal > 1, dilation=d))
            widths.append(c_out)
            c_in = c_out
        self.blocks = nn.Sequential(*blocks)
        self.taps = feature_taps(strides)
        self.out_channels = tuple(widths[i] for i in self.taps)
        self.last: ConvBNAct | None = None
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            last = make_divisible(_LAST * width, 4)
            self.last = ConvBNAct(c_in, last, 1, act=nn.ReLU(inplace=True))
            self.conv_head = nn.Conv2d(last, _HEAD, 1)
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(_HEAD, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(N, num_classes)``."""
        if self.last is None or self.classifier is None:
            raise RuntimeError("GhostNet built without a classifier (num_classes=0): use features(x)")
        x = self.last(self.features(x)[2]).mean((2, 3), keepdim=True)
        x = F.relu(self.conv_head(x)).flatten(1)
        return self.classifier(self.dropout(x))
