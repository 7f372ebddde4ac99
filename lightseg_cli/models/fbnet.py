"""FBNet-A, -B and -C (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via
Differentiable Neural Architecture Search", CVPR 2019).

The three networks the paper's search found (its Figure 4), in its macro-architecture (Table 1):
a 3x3 stem conv (16 channels, stride 2), 22 searched layers in seven stages of widths 16, 24, 32,
64, 112, 184 and 352, a 1x1 conv to 1984 channels (1504 in FBNet-A), pooling and the classifier. Each searched layer
is either a skip (identity) or an inverted-residual block: a 1x1 conv (ReLU) expanding by ``e``,
a depth-wise kxk (ReLU; stride 2 where the stage downsamples), a linear 1x1 projection, and an
identity shortcut where the shape is kept; "g2" blocks group both 1x1 convs in two and shuffle the
channels between them. The block tables below are those of the authors' model definitions
(``fbnet_modeldef``). With their ImageNet heads, A has 4.32M parameters and 250M multiply-adds at
224x224 (paper: 4.3M, 249M) and C 5.57M, 385M (paper: 5.5M, 375M); B has 4.86M, 306M where the
paper gives 4.5M, 295M (the authors' definition of B, followed here, is the larger one).

``features(x)`` returns the outputs of the last layers at strides 8, 16 and 32 (32, 112 and 352
channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .espnetv2 import ChannelShuffle
from .layers import ConvBNAct, TappedBackbone, feature_taps, init_weights, make_divisible, stride_plan

# A searched layer: (kernel, expansion, output width, stride, groups); expansion 0 is a skip.
Layer = tuple[int, int, int, int, int]
_STEM = 16
_HEAD = 1984


def _skip(c: int) -> Layer:
    return (0, 0, c, 1, 1)


@dataclass(frozen=True)
class FBNetConfig:
    layers: tuple[Layer, ...]
    head: int = _HEAD


CONFIGS: dict[str, FBNetConfig] = {
    "a": FBNetConfig((
        _skip(16),
        (3, 3, 24, 2, 1), (3, 1, 24, 1, 1), _skip(24), _skip(24),
        (5, 6, 32, 2, 1), (3, 3, 32, 1, 1), (5, 1, 32, 1, 1), (3, 3, 32, 1, 1),
        (5, 6, 64, 2, 1), (5, 3, 64, 1, 1), (5, 1, 64, 1, 2), (5, 6, 64, 1, 1),
        (3, 6, 112, 1, 1), (5, 1, 112, 1, 2), (5, 3, 112, 1, 1), (3, 1, 112, 1, 2),
        (5, 6, 184, 2, 1), (5, 6, 184, 1, 1), (5, 3, 184, 1, 1), (5, 6, 184, 1, 1),
        (5, 6, 352, 1, 1),
    ), head=1504),
    "b": FBNetConfig((
        (3, 1, 16, 1, 1),
        (3, 6, 24, 2, 1), (5, 1, 24, 1, 1), (3, 1, 24, 1, 1), (3, 1, 24, 1, 1),
        (5, 6, 32, 2, 1), (5, 3, 32, 1, 1), (3, 6, 32, 1, 1), (5, 6, 32, 1, 1),
        (5, 6, 64, 2, 1), (5, 6, 64, 1, 1), _skip(64), (5, 3, 64, 1, 1),
        (5, 6, 112, 1, 1), (3, 1, 112, 1, 1), (5, 1, 112, 1, 1), (5, 3, 112, 1, 1),
        (5, 6, 184, 2, 1), (5, 1, 184, 1, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1),
        (3, 6, 352, 1, 1),
    )),
    "c": FBNetConfig((
        (3, 1, 16, 1, 1),
        (3, 6, 24, 2, 1), _skip(24), (3, 1, 24, 1, 1), (3, 1, 24, 1, 1),
        (5, 6, 32, 2, 1), (5, 3, 32, 1, 1), (5, 6, 32, 1, 1), (3, 6, 32, 1, 1),
        (5, 6, 64, 2, 1), (5, 3, 64, 1, 1), (5, 6, 64, 1, 1), (5, 6, 64, 1, 1),
        (5, 6, 112, 1, 1), (5, 6, 112, 1, 1), (5, 6, 112, 1, 1), (5, 3, 112, 1, 1),
        (5, 6, 184, 2, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1), (5, 6, 184, 1, 1),
        (3, 6, 352, 1, 1),
    )),
}


class IRFBlock(nn.Module):
    """FBNet's inverted-residual block (grouped 1x1 convs with a channel shuffle when ``groups > 1``)."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, expand: int, groups: int = 1,
                 dilation: int = 1) -> None:
        super().__init__()
        mid = make_divisible(c_in * expand, 8)
        self.pw = ConvBNAct(c_in, mid, 1, groups=groups, act=nn.ReLU(inplace=True))
        self.shuffle = ChannelShuffle(groups) if groups > 1 else None
        self.dw = ConvBNAct(mid, mid, k, stride, dilation=dilation, groups=mid, act=nn.ReLU(inplace=True))
        self.pwl = ConvBNAct(mid, c_out, 1, groups=groups)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(x)
        if self.shuffle is not None:
            y = self.shuffle(y)
        y = self.pwl(self.dw(y))
        return x + y if self.residual else y


class FBNet(TappedBackbone):
    """FBNet backbone, with the ImageNet head when ``num_classes > 0``."""

    def __init__(self, config: FBNetConfig, num_classes: int = 1000, output_stride: int = 32,
                 dropout: float = 0.2) -> None:
        super().__init__()
        strides = [layer[3] for layer in config.layers]
        self.stem = ConvBNAct(3, _STEM, 3, 2, act=nn.ReLU(inplace=True))
        blocks: list[nn.Module] = []
        c_in = _STEM
        for (k, e, c, _, g), (s, d) in zip(config.layers, stride_plan(strides, output_stride)):
            if e == 0:
                if c != c_in or s != 1:
                    raise ValueError(f"a skip layer cannot change the shape ({c_in} -> {c} channels, stride {s})")
                blocks.append(nn.Identity())
            else:
                blocks.append(IRFBlock(c_in, c, k, s, e, g, dilation=d))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.taps = feature_taps(strides)
        self.out_channels = tuple(config.layers[i][2] for i in self.taps)
        self.head: ConvBNAct | None = None
        self.classifier: nn.Linear | None = None
        if num_classes > 0:
            self.head = ConvBNAct(c_in, config.head, 1, act=nn.ReLU(inplace=True))
            self.dropout = nn.Dropout(dropout)
            self.classifier = nn.Linear(config.head, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """ImageNet logits ``(N, num_classes)``."""
        if self.head is None or self.classifier is None:
            raise RuntimeError("FBNet built without a classifier (num_classes=0): use features(x)")
        x = self.head(self.features(x)[2]).mean((2, 3))
        return self.classifier(self.dropout(x))
