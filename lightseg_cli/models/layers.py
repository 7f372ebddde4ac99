"""Small building blocks shared by the model files, and batch-norm folding for inference.

Attribute names (``conv``, ``bn``, ``act``) follow the authors' checkpoints so that their
state dicts load with ``strict=True`` and no key renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBN(nn.Module):
    """Conv2d (no bias) followed by BatchNorm, optionally PReLU. "Same" padding for odd kernels."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        stride: int = 1,
        *,
        dilation: int = 1,
        groups: int = 1,
        act: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        pad = (k - 1) // 2 * dilation
        self.conv = nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=eps)
        if act:
            self.act = nn.PReLU(c_out)
        else:
            self.act = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return self.act(x) if self.act is not None else x


class ConvBNAct(ConvBN):
    """Conv2d (no bias), BatchNorm and an optional activation module (``nn.ReLU``, ``nn.ReLU6``, ...).

    A ``ConvBN`` whose activation is given, so batch-norm folding treats both alike.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        k: int,
        stride: int = 1,
        *,
        dilation: int = 1,
        groups: int = 1,
        act: nn.Module | None = None,
        eps: float = 1e-5,
    ) -> None:
        super().__init__(c_in, c_out, k, stride, dilation=dilation, groups=groups, act=False, eps=eps)
        self.act = act


def make_divisible(v: float, divisor: int) -> int:
    """``v`` rounded to the nearest multiple of ``divisor``, never more than 10% below ``v`` (the
    channel rounding of MobileNet, EfficientNet and GhostNet)."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def stride_plan(strides: list[int], output_stride: int, stem_stride: int = 2) -> list[tuple[int, int]]:
    """Per block, ``(stride, dilation)`` for a backbone whose blocks have nominal ``strides``.

    Once the network stride reaches ``output_stride``, a later strided block runs with stride 1
    and every block after it with its dilation multiplied by that stride (atrous convolution, as in
    DeepLab and MobileNetV3's segmentation models); the block itself keeps the previous dilation.
    """
    if output_stride not in (8, 16, 32):
        raise ValueError(f"output stride must be 8, 16 or 32, got {output_stride}")
    plan, current, dilation = [], stem_stride, 1
    for s in strides:
        if s > 1 and current >= output_stride:
            plan.append((1, dilation))
            dilation *= s
        else:
            current *= s
            plan.append((s, dilation))
    return plan


def feature_taps(strides: list[int], stem_stride: int = 2) -> tuple[int, int, int]:
    """Indices of the last blocks at nominal network strides 8, 16 and 32 (the blocks whose outputs
    a segmentation head reads)."""
    taps, current = {}, stem_stride
    for i, s in enumerate(strides):
        current *= s
        taps[current] = i
    try:
        return taps[8], taps[16], taps[32]
    except KeyError:
        raise ValueError(f"blocks with strides {strides} do not reach strides 8, 16 and 32") from None


class TappedBackbone(nn.Module):
    """A classification backbone (``stem``, then ``blocks``) read at the blocks in ``taps``: the
    stride-8/16/32 features a segmentation head uses. Subclasses build those three attributes."""

    stem: nn.Module
    blocks: nn.Sequential
    taps: tuple[int, int, int]

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stem(x)
        out = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.taps:
                out.append(x)
        return out[0], out[1], out[2]


def init_weights(model: nn.Module) -> None:
    """He-normal (fan-out) convolutions, unit batch norms, small-normal linear layers, zero biases."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.01)
            nn.init.zeros_(m.bias)


class BNPReLU(nn.Module):
    """BatchNorm followed by PReLU (the authors' ``BR``)."""

    def __init__(self, c: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c, eps=eps)
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class Conv(nn.Module):
    """A bias-free Conv2d kept inside a ``.conv`` attribute, as the authors' checkpoints expect."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int = 1, *, dilation: int = 1, groups: int = 1) -> None:
        super().__init__()
        pad = (k - 1) // 2 * dilation
        self.conv = nn.Conv2d(c_in, c_out, k, stride, pad, dilation=dilation, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class LogitResize(nn.Module):
    """A network's last step: bilinear resize of the class logits to ``size``.

    Inference can defer it (``deferred = True``, set by ``Segmenter`` on the torch and openvino
    backends): the network then returns its low-resolution logits and the labels are computed at the
    frame's size directly (``infer.labels``), giving the same labels without materialising C
    full-size float maps or arg-maxing over them. Training and ``lightseg export`` keep the resize in
    the graph.
    """

    def __init__(self, align_corners: bool) -> None:
        super().__init__()
        self.align_corners = align_corners
        self.deferred = False

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        if self.deferred:
            return x
        return F.interpolate(x, size=size, mode="bilinear", align_corners=self.align_corners)


def _aa_taps(n_in: int, n_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices and weights ``(n_out, K)`` of PyTorch's (and PIL's) antialiased bilinear
    resize along one axis (``align_corners=False``): a triangle filter widened by the scale factor
    when shrinking, weights renormalised where it overhangs the border."""
    scale = n_in / n_out
    support = max(scale, 1.0)
    centre = (torch.arange(n_out, dtype=torch.float64) + 0.5) * scale
    lo = (centre - support + 0.5).floor().clamp(min=0)  # int() of a non-negative value
    hi = (centre + support + 0.5).floor().clamp(max=n_in)
    k = int((hi - lo).max())
    idx = lo[:, None] + torch.arange(k, dtype=torch.float64)
    w = (1 - ((idx - centre[:, None] + 0.5) / support).abs()).clamp(min=0) * (idx < hi[:, None])
    w = w / w.sum(1, keepdim=True)
    return idx.clamp(max=n_in - 1).long(), w.float()


def _aa_axis(x: torch.Tensor, dim: int, n_out: int) -> torch.Tensor:
    idx, w = _aa_taps(x.shape[dim], n_out)
    shape = [1] * x.ndim
    shape[dim] = n_out
    out = None
    for j in range(idx.shape[1]):
        term = x.index_select(dim, idx[:, j].to(x.device)) * w[:, j].to(x.device, x.dtype).view(shape)
        out = term if out is None else out + term
    return out


def resize_antialiased(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size, mode="bilinear", antialias=True, align_corners=False)``, exportable.

    ONNX (opset 17) has no antialiased resize, so while exporting the same filter is computed as
    a few gathers and weighted sums per axis (weights fixed by the static sizes); otherwise
    PyTorch's own kernel runs. Both agree to float rounding.
    """
    if not (torch.onnx.is_in_onnx_export() or torch.jit.is_tracing()):
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
    return _aa_axis(_aa_axis(x, 3, int(size[1])), 2, int(size[0]))


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """Return a conv with ``bn`` folded in: conv' (x) == bn(conv(x)) in eval mode."""
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    fused = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,  # type: ignore[arg-type]
        conv.stride,  # type: ignore[arg-type]
        conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,  # type: ignore[arg-type]
        groups=conv.groups,
        bias=True,
    ).to(conv.weight.device, conv.weight.dtype)
    bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.weight.data.copy_(conv.weight.detach() * scale.reshape(-1, 1, 1, 1))
    fused.bias.data.copy_((bias - bn.running_mean) * scale + bn.bias.detach())
    return fused


@torch.no_grad()
def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that directly follows a Conv2d into that conv, in place.

    Two shapes are recognised: a module with ``conv`` and ``bn`` attributes whose forward applies
    ``bn`` right after ``conv`` (``ConvBN``), and consecutive ``Conv2d``, ``BatchNorm2d`` children
    of an ``nn.Sequential``. Batch norms that follow a sum or a concatenation stay as they are.
    Only valid for inference (eval mode). Returns the number of folded pairs.
    """
    folded = 0
    for module in list(model.modules()):
        if isinstance(module, ConvBN) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = _fold(module.conv, module.bn)
            module.bn = nn.Identity()  # type: ignore[assignment]
            folded += 1
        elif isinstance(module, nn.Sequential):
            children = list(module.children())
            for i in range(len(children) - 1):
                conv, bn = children[i], children[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module[i] = _fold(conv, bn)
                    module[i + 1] = nn.Identity()
                    folded += 1
    return folded


@torch.no_grad()
def fuse_for_inference(model: nn.Module) -> nn.Module:
    """Inference-only rewrites that keep outputs equal: BN folding, then each module's own
    ``fuse_for_inference`` (e.g. ESPNetv2's shuffle removal). The model must be in eval mode."""
    fold_batchnorm(model)
    for module in model.modules():
        fuse = getattr(module, "fuse_for_inference", None)
        if callable(fuse):
            fuse()
    return model
