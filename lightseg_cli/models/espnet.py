"""ESPNet and ESPNet-C (Mehta et al., ECCV 2018).

ESPNet-C is the encoder: a strided 3x3 CBR, then two levels of ESP modules (reduce with a 1x1,
split into five parallel 3x3 dilated convolutions at rates 1, 2, 4, 8, 16, fuse the dilated
branches hierarchically to avoid gridding, concatenate), with the input image average-pooled and
concatenated back at 1/2 and 1/4 ("input reinforcement"); a 1x1 classifier at 1/8 resolution.

ESPNet adds the light decoder: the 1/8 logits are upsampled with a transposed conv (RUM), merged
with a projection of the 1/4 features through an ESP module, upsampled again, concatenated with
the 1/2 features, refined by a 3x3 CBR and upsampled to full resolution.

Two variants of the last decoder block exist in the authors' code; ``decoder_skip`` selects it:
``"level1"`` (their test code; the Cityscapes checkpoints) concatenates the 16-channel level-1
output, ``"level1_cat"`` (their training code; the CamVid checkpoint) concatenates the 19-channel
``BR(cat(level1, pooled image))``.

The network needs input sides that are multiples of 8.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from .layers import BNPReLU, Conv, ConvBN, LogitResize

_EPS = 1e-3  # the authors' batch-norm epsilon for ESPNet
DecoderSkip = Literal["level1", "level1_cat"]


class ESPModule(nn.Module):
    """Reduce (1x1, or strided 3x3 when downsampling) - split - dilated transform - HFF - merge."""

    def __init__(self, c_in: int, c_out: int, *, down: bool = False, residual: bool = True) -> None:
        super().__init__()
        n = c_out // 5
        n1 = c_out - 4 * n
        self.c1 = Conv(c_in, n, 3, 2) if down else Conv(c_in, n, 1)
        self.d1 = Conv(n, n1, 3, dilation=1)
        self.d2 = Conv(n, n, 3, dilation=2)
        self.d4 = Conv(n, n, 3, dilation=4)
        self.d8 = Conv(n, n, 3, dilation=8)
        self.d16 = Conv(n, n, 3, dilation=16)
        self.down = down
        self.residual = residual and not down and c_in == c_out
        if down:
            # The strided module has its own BN + PReLU; the regular one keeps them in a BR.
            self.bn = nn.BatchNorm2d(c_out, eps=_EPS)
            self.act = nn.PReLU(c_out)
        else:
            self.bn = BNPReLU(c_out, eps=_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.c1(x)
        s2 = self.d2(r)
        s4 = s2 + self.d4(r)
        s8 = s4 + self.d8(r)
        s16 = s8 + self.d16(r)
        out = torch.cat([self.d1(r), s2, s4, s8, s16], 1)
        if self.residual:
            out = out + x
        if self.down:
            return self.act(self.bn(out))
        return self.bn(out)


class ImagePyramid(nn.Module):
    """Average-pool the image ``times`` times by 2 (3x3, stride 2, pad 1)."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.times = times

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(self.times):
            x = F.avg_pool2d(x, 3, 2, 1)
        return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: logits at 1/8 of the input resolution (``forward``), or all the skip features."""

    def __init__(self, num_classes: int = 20, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.level1 = ConvBN(3, 16, 3, 2, eps=_EPS)
        self.sample1 = ImagePyramid(1)
        self.sample2 = ImagePyramid(2)
        self.b1 = BNPReLU(16 + 3, eps=_EPS)
        self.level2_0 = ESPModule(16 + 3, 64, down=True)
        self.level2 = nn.ModuleList(ESPModule(64, 64) for _ in range(p))
        self.b2 = BNPReLU(128 + 3, eps=_EPS)
        self.level3_0 = ESPModule(128 + 3, 128, down=True)
        self.level3 = nn.ModuleList(ESPModule(128, 128) for _ in range(q))
        self.b3 = BNPReLU(256, eps=_EPS)
        self.classifier = Conv(256, num_classes, 1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (level-1 output, level-1 cat, level-2 cat, level-3 cat)."""
        l1 = self.level1(x)
        l1_cat = self.b1(torch.cat([l1, self.sample1(x)], 1))
        l2_0 = self.level2_0(l1_cat)
        l2 = l2_0
        for block in self.level2:
            l2 = block(l2)
        l2_cat = self.b2(torch.cat([l2, l2_0, self.sample2(x)], 1))
        l3_0 = self.level3_0(l2_cat)
        l3 = l3_0
        for block in self.level3:
            l3 = block(l3)
        l3_cat = self.b3(torch.cat([l3_0, l3], 1))
        return l1, l1_cat, l2_cat, l3_cat

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)[3])


class ESPNetC(ESPNetEncoder):
    """ESPNet-C with the authors' inference-time bilinear x8 upsampling, so logits are at input size.

    Their ``nn.Upsample(scale_factor=8, mode='bilinear')`` ran on PyTorch 0.3, whose bilinear
    upsampling aligned corners (the ``align_corners=False`` default came with 0.4).
    """

    def __init__(self, num_classes: int = 20, p: int = 2, q: int = 8) -> None:
        super().__init__(num_classes, p, q)
        self.logit_resize = LogitResize(align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return self.logit_resize(y, (y.shape[2] * 8, y.shape[3] * 8))


class ESPNet(nn.Module):
    """ESPNet with the reduce-upsample-merge decoder; logits at input size."""

    def __init__(
        self, num_classes: int = 20, p: int = 2, q: int = 8, decoder_skip: DecoderSkip = "level1"
    ) -> None:
        super().__init__()
        c = num_classes
        self.decoder_skip = decoder_skip
        self.encoder = ESPNetEncoder(c, p, q)
        self.level3_C = Conv(128 + 3, c, 1)
        self.br = nn.BatchNorm2d(c, eps=_EPS)
        self.conv = ConvBN((19 if decoder_skip == "level1_cat" else 16) + c, c, 3, eps=_EPS)
        self.up_l3 = nn.Sequential(nn.ConvTranspose2d(c, c, 2, stride=2, bias=False))
        self.combine_l2_l3 = nn.Sequential(BNPReLU(2 * c, eps=_EPS), ESPModule(2 * c, c, residual=False))
        self.up_l2 = nn.Sequential(nn.ConvTranspose2d(c, c, 2, stride=2, bias=False), BNPReLU(c, eps=_EPS))
        self.classifier = nn.ConvTranspose2d(c, c, 2, stride=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l1_cat, l2_cat, l3_cat = self.encoder.features(x)
        up3 = self.up_l3(self.br(self.encoder.classifier(l3_cat)))
        merged = self.combine_l2_l3(torch.cat([self.level3_C(l2_cat), up3], 1))
        up2 = self.up_l2(merged)
        skip = l1_cat if self.decoder_skip == "level1_cat" else l1
        return self.classifier(self.conv(torch.cat([up2, skip], 1)))
