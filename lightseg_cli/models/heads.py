"""Backbone + head segmentation networks: one light head shared by every classification backbone.

A backbone (``efficientnet_lite.py``, ``ghostnet.py``, ``fbnet.py``) exposes ``features(x)``: its
stride-8, -16 and -32 feature maps (the last two at stride 16 when built with ``output_stride=16``),
and their widths as ``out_channels``. :class:`BackboneSeg` runs a backbone, a head on its features
and, as its last step, the shared :class:`~.layers.LogitResize` (so inference can defer the final
resize and export keeps it in the graph).

The head is LR-ASPP (Howard et al., "Searching for MobileNetV3", ICCV 2019, section 6.3): a 1x1
conv-BN-ReLU on the deepest features, gated per channel by a global-average-pool + 1x1 conv +
sigmoid branch, classified, upsampled to stride 8 and added to a 1x1 classifier of the stride-8
features.
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .layers import ConvBNAct, LogitResize, init_weights


class Backbone(Protocol):
    """What :class:`BackboneSeg` needs of a backbone."""

    out_channels: tuple[int, int, int]  # widths of the stride-8, -16 and -32 features

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...


class LRASPP(nn.Module):
    """Lite R-ASPP on ``(stride-8, stride-16, stride-32)`` features.

    ``high`` picks the features the attention branch reads (2: stride 32, the default; 1: stride 16).
    The high branch is classified before it is upsampled: a 1x1 conv and a bilinear resize commute
    (the resize is linear and its weights sum to one), so this equals the paper's order and resizes
    ``num_classes`` channels instead of ``inter``.
    """

    def __init__(self, in_channels: tuple[int, int, int], num_classes: int, inter: int = 128, high: int = 2) -> None:
        super().__init__()
        if high not in (1, 2):
            raise ValueError(f"LR-ASPP reads the stride-16 (1) or stride-32 (2) features, got {high}")
        self.high = high
        c_low, c_high = in_channels[0], in_channels[high]
        self.cbr = ConvBNAct(c_high, inter, 1, act=nn.ReLU(inplace=True))
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_high, inter, 1, bias=False), nn.Sigmoid())
        self.low_classifier = nn.Conv2d(c_low, num_classes, 1)
        self.high_classifier = nn.Conv2d(inter, num_classes, 1)
        init_weights(self)
        for clf in (self.low_classifier, self.high_classifier):  # small logits at the start of training
            nn.init.normal_(clf.weight, 0.0, 0.01)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> torch.Tensor:
        low, high = feats[0], feats[self.high]
        y = self.high_classifier(self.cbr(high) * self.scale(high))
        y = F.interpolate(y, size=low.shape[2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + y


class BackboneSeg(nn.Module):
    """``backbone.features`` -> ``head`` -> logits resized to the input size."""

    encoder_module = "backbone"  # the pre-trained part (``lightseg train --encoder-lr``)

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(backbone, "features", None)):
            raise TypeError(f"{type(backbone).__name__} has no features(x) method")
        self.backbone = backbone
        self.head = head
        self.logit_resize = LogitResize(align_corners=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The logits and the backbone features they came from (feature distillation reads both)."""
        feats = self.backbone.features(x)
        return self.logit_resize(self.head(feats), x.shape[2:]), feats
