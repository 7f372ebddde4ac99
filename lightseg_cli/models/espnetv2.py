"""ESPNetv2 segmentation network (Mehta et al., CVPR 2019; the EdgeNets segmentation head).

Encoder: the ESPNetv2 backbone up to level 4 (output stride 16). Its unit is the EESP block:
a grouped 1x1 reduction, K=4 parallel depth-wise 3x3 convolutions whose dilation grows with the
branch index until a per-level receptive-field limit, hierarchical (cumulative) fusion, a grouped
1x1 expansion and a residual. Downsampling concatenates a strided EESP with an average-pooled copy
of the input and adds a projection of the average-pooled image ("input reinforcement").

Decoder: four Efficient Pyramid Pooling (EPP) blocks, bottom-up, each merging the encoder feature
of the next resolution through an "efficient point-wise" gate (a grouped 3x3 CBR scaled by a
channel-attention sigmoid), then a bilinear (align_corners=True) resize to the input size.

Width ``s`` in {0.5, 1.0, 1.5, 2.0} scales the channels; module names follow the authors'
checkpoints (``base_net.level1...``) so those load with ``strict=True``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import BNPReLU, Conv, ConvBN, LogitResize

CHANNELS: dict[float, tuple[int, int, int, int]] = {
    0.5: (16, 32, 64, 128),
    1.0: (32, 64, 128, 256),
    1.5: (32, 96, 192, 384),
    2.0: (32, 128, 256, 512),
}
_BRANCHES = 4
_RECEPTIVE_LIMIT = (13, 11, 9, 7, 5)  # per spatial level, in pixels of a 3x3 kernel's equivalent size
_REPEATS = (3, 7)  # EESP blocks after the level-3 and level-4 downsamplers
_REINFORCE = 3  # channels of the image projection inside each downsampler


def _cbr(c_in: int, c_out: int, k: int, groups: int = 1) -> nn.Sequential:
    """Conv-BN-PReLU as a plain Sequential (the decoder's checkpoint layout: ``cbr.0/1/2``)."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, k, 1, (k - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
        nn.PReLU(c_out),
    )


class _Wrapped(nn.Module):
    """Holds a Sequential under a named attribute (``cbr`` or ``br``), as in the checkpoints."""

    def __init__(self, name: str, seq: nn.Sequential) -> None:
        super().__init__()
        self.key = name
        self.add_module(name, seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self.key)(x)


class EESP(nn.Module):
    """Extremely Efficient Spatial Pyramid unit. With ``stride=2`` it returns the pre-activation
    expansion (the downsampler adds and activates)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, r_lim: int = 7) -> None:
        super().__init__()
        k = _BRANCHES
        n = c_out // k
        if n * k != c_out:
            raise ValueError(f"EESP output width {c_out} must be divisible by {k}")
        self.stride = stride
        self.proj_1x1 = ConvBN(c_in, n, 1, groups=k)
        # Kernel sizes 3, 5, 7, ... (as dilations of a 3x3) up to the receptive-field limit;
        # beyond it a branch falls back to 3. Sorted so the 3x3 branches come first.
        sizes = sorted(3 + 2 * i if 3 + 2 * i <= r_lim else 3 for i in range(k))
        self.spp_dw = nn.ModuleList(Conv(n, n, 3, stride, dilation=(s - 1) // 2, groups=n) for s in sizes)
        self.conv_1x1_exp = ConvBN(c_out, c_out, 1, groups=k, act=False)
        self.br_after_cat = BNPReLU(c_out)
        self.module_act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.proj_1x1(x)
        branches = [self.spp_dw[0](r)]
        for conv in self.spp_dw[1:]:
            branches.append(conv(r) + branches[-1])
        out = self.conv_1x1_exp(self.br_after_cat(torch.cat(branches, 1)))
        if self.stride == 2:
            return out
        if out.shape == x.shape:
            out = out + x
        return self.module_act(out)


class DownSampler(nn.Module):
    """cat(avg-pool(x), strided EESP(x)) + projection of the image pooled to the same size."""

    def __init__(self, c_in: int, c_out: int, r_lim: int) -> None:
        super().__init__()
        self.eesp = EESP(c_in, c_out - c_in, stride=2, r_lim=r_lim)
        self.inp_reinf = nn.Sequential(
            ConvBN(3, _REINFORCE, 3),
            ConvBN(_REINFORCE, c_out, 1, act=False),
        )
        self.act = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor, pyramid: list[torch.Tensor]) -> torch.Tensor:
        """``pyramid[k]`` is the image halved k times (3x3 average, stride 2); the level whose
        height matches this one is used, and levels are added to it as needed (shared by all
        downsamplers, so the full-size image is pooled once per level, not once per use)."""
        pooled = F.avg_pool2d(x, 3, 2, 1)
        out = torch.cat([pooled, self.eesp(x)], 1)
        while pyramid[-1].shape[2] > pooled.shape[2]:
            pyramid.append(F.avg_pool2d(pyramid[-1], 3, 2, 1))
        image = next(p for p in pyramid if p.shape[2] == pooled.shape[2])
        return self.act(out + self.inp_reinf(image))


class EESPNetBase(nn.Module):
    """ESPNetv2 backbone, levels 1-4."""

    def __init__(self, s: float) -> None:
        super().__init__()
        c = CHANNELS[s]
        self.config = c
        self.level1 = ConvBN(3, c[0], 3, 2)
        self.level2_0 = DownSampler(c[0], c[1], _RECEPTIVE_LIMIT[0])
        self.level3_0 = DownSampler(c[1], c[2], _RECEPTIVE_LIMIT[1])
        self.level3 = nn.ModuleList(EESP(c[2], c[2], r_lim=_RECEPTIVE_LIMIT[2]) for _ in range(_REPEATS[0]))
        self.level4_0 = DownSampler(c[2], c[3], _RECEPTIVE_LIMIT[2])
        self.level4 = nn.ModuleList(EESP(c[3], c[3], r_lim=_RECEPTIVE_LIMIT[3]) for _ in range(_REPEATS[1]))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        pyramid = [x]
        l1 = self.level1(x)
        l2 = self.level2_0(l1, pyramid)
        l3 = self.level3_0(l2, pyramid)
        for block in self.level3:
            l3 = block(l3)
        l4 = self.level4_0(l3, pyramid)
        for block in self.level4:
            l4 = block(l4)
        return l1, l2, l3, l4


def _pool_matrix(n_in: int, n_out: int, like: torch.Tensor) -> torch.Tensor:
    """(n_out, n_in) averaging matrix of adaptive average pooling along one axis (built in numpy so
    that it is a single constant in an exported graph)."""
    m = np.zeros((n_out, n_in), np.float32)
    for i in range(n_out):
        a, b = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, a:b] = 1.0 / (b - a)
    return torch.from_numpy(m).to(like.device, like.dtype)


def adaptive_avg_pool(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.adaptive_avg_pool2d``; while exporting to ONNX (which has no adaptive pooling to sizes
    that do not divide the input) the same averages as two constant matrix products."""
    if not torch.onnx.is_in_onnx_export():
        return F.adaptive_avg_pool2d(x, size)
    h, w = x.shape[2:]
    return _pool_matrix(int(h), size[0], x) @ x @ _pool_matrix(int(w), size[1], x).T


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        return x.reshape(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class EfficientPyramidPool(nn.Module):
    """Project, run a depth-wise 3x3 at five scales (2, 1.5, 1, 0.5, 0.1), shuffle and merge."""

    SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)

    def __init__(self, c_in: int, c_proj: int, c_out: int, last: bool = False) -> None:
        super().__init__()
        n = len(self.SCALES)
        self.projection_layer = _Wrapped("cbr", _cbr(c_in, c_proj, 1))
        self.stages = nn.ModuleList(
            nn.Conv2d(c_proj, c_proj, 3, 1, 1, groups=c_proj, bias=False) for _ in self.SCALES
        )
        self.merge_layer = nn.Sequential(
            _Wrapped("br", nn.Sequential(nn.BatchNorm2d(c_proj * n), nn.PReLU(c_proj * n))),
            ChannelShuffle(n),
            _Wrapped("cbr", _cbr(c_proj * n, c_proj, 3, groups=c_proj)),
            nn.Conv2d(c_proj, c_out, 1, bias=last),
        )
        self.br = None if last else _Wrapped("br", nn.Sequential(nn.BatchNorm2d(c_out), nn.PReLU(c_out)))
        self.interleaved = False

    @torch.no_grad()
    def fuse_for_inference(self) -> None:
        """Write the branches straight into shuffled channel order and permute the per-channel
        BN/PReLU before the shuffle to match, so the shuffle (two full-size copies) disappears."""
        if self.interleaved:
            return
        n, c = len(self.SCALES), self.stages[0].out_channels
        perm = torch.tensor([g * c + k for k in range(c) for g in range(n)])
        for mod in self.merge_layer[0].br:
            for t in list(mod.parameters(recurse=False)) + list(mod.buffers(recurse=False)):
                if t.ndim == 1 and t.numel() == n * c:
                    t.copy_(t[perm])
        self.interleaved = True

    def _merge_input(self, outs: list[torch.Tensor]) -> torch.Tensor:
        if not self.interleaved:
            return self.merge_layer[1](self.merge_layer[0](torch.cat(outs, 1)))
        first = outs[0]
        n = len(outs)
        b, c, h, w = first.shape
        out = torch.empty(b, c * n, h, w, dtype=first.dtype, device=first.device,
                          memory_format=torch.channels_last if first.is_contiguous(memory_format=torch.channels_last)
                          else torch.contiguous_format)
        for g, y in enumerate(outs):
            out[:, g::n] = y
        return self.merge_layer[0](out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection_layer(x)
        h, w = x.shape[2:]
        outs = []
        for scale, stage in zip(self.SCALES, self.stages):
            hs, ws = max(math.ceil(h * scale), 5), max(math.ceil(w * scale), 5)
            if scale > 1.0:
                y = F.interpolate(x, (hs, ws), mode="bilinear", align_corners=True)
                y = adaptive_avg_pool(stage(y), (h, w))
            elif scale < 1.0:
                y = stage(adaptive_avg_pool(x, (hs, ws)))
                y = F.interpolate(y, (h, w), mode="bilinear", align_corners=True)
            else:
                y = stage(x)
            outs.append(y)
        out = self.merge_layer[3](self.merge_layer[2](self._merge_input(outs)))
        return self.br(out) if self.br is not None else out


class EfficientPWConv(nn.Module):
    """Grouped 3x3 CBR (groups = gcd of the widths) gated by a global channel attention."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c_in, c_out, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = _Wrapped("cbr", _cbr(c_in, c_out, 3, groups=math.gcd(c_in, c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2Seg(nn.Module):
    """ESPNetv2 segmentation network; logits at input size."""

    encoder_module = "base_net"  # the pre-trained part (``lightseg train --encoder-lr``)

    def __init__(self, num_classes: int = 20, s: float = 2.0, dec_base: int = 16) -> None:
        super().__init__()
        if s not in CHANNELS:
            raise ValueError(f"ESPNetv2 width s={s} is not one of {sorted(CHANNELS)}")
        self.base_net = EESPNetBase(s)
        c = self.base_net.config
        dec = (4 * dec_base, 3 * dec_base, 2 * dec_base, num_classes)
        proj = min(num_classes // 2, dec_base)
        self.bu_dec_l1 = EfficientPyramidPool(c[3], proj, dec[0])
        self.bu_dec_l2 = EfficientPyramidPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = EfficientPyramidPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = EfficientPyramidPool(dec[2], proj, dec[3], last=True)
        self.merge_enc_dec_l2 = EfficientPWConv(c[2], dec[0])
        self.merge_enc_dec_l3 = EfficientPWConv(c[1], dec[1])
        self.merge_enc_dec_l4 = EfficientPWConv(c[0], dec[2])
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.PReLU(dec[0]))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(dec[1]), nn.PReLU(dec[1]))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(dec[2]), nn.PReLU(dec[2]))
        self.logit_resize = LogitResize(align_corners=True)

    @staticmethod
    def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        # The authors upsample by exactly 2; resizing to the skip's size is the same for inputs
        # that are multiples of 16 and also works for any other size.
        return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2, l3, l4 = self.base_net(x)
        y = self.bu_dec_l1(l4)
        skip = self.merge_enc_dec_l2(l3)
        y = self.bu_dec_l2(self.bu_br_l2(skip + self._up(y, skip)))
        skip = self.merge_enc_dec_l3(l2)
        y = self.bu_dec_l3(self.bu_br_l3(skip + self._up(y, skip)))
        skip = self.merge_enc_dec_l4(l1)
        y = self.bu_dec_l4(self.bu_br_l4(skip + self._up(y, skip)))
        return self.logit_resize(y, x.shape[2:])
