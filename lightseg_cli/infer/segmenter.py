"""Where a frame is inferred: ``Segmenter`` = preprocessing + network + arg-max, on one device.

The three steps are separate methods so the pipeline can run them as stages, and timing can be
attributed to each. ``Segmenter.__call__`` chains them for one-off use.

Labels are taken at the network size and resized to the frame with nearest neighbour, as the
authors' scripts do; ``exact_labels`` gives the labels of bilinearly resized logits instead,
computed cheaply and exactly by ``resized_argmax``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..zoo import ModelCfg, create_model
from .backends import Backend, make_backend
from .preprocess import Normalizer, fit_size


def _bilinear_taps(n_in: int, n_out: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices and weight of ``F.interpolate(mode="bilinear", align_corners=False)``."""
    src = ((torch.arange(n_out, device=device, dtype=torch.float32) + 0.5) * (n_in / n_out) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    return i0, (i0 + 1).clamp(max=n_in - 1), src - i0


def resized_argmax(logits: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """``argmax(interpolate(logits, out_hw, bilinear))`` as uint8, computed cheaply and exactly.

    An output pixel is a convex combination of four source pixels. Where those four share their
    arg-max class c, c stays the arg-max of any convex combination (logit_c beats every other
    logit at each corner, so it beats it in the weighted sum too): the low-resolution label is
    the answer. Only pixels on class boundaries (a few percent) are interpolated for real.
    """
    n, c, h, w = logits.shape
    big_h, big_w = out_hw
    dev = logits.device
    low = logits.argmax(1).to(torch.uint8)
    # A source cell (i, j)-(i+1, j+1) is "mixed" when its four corners disagree (edges clamp).
    right = torch.cat([low[:, :, 1:], low[:, :, -1:]], 2)
    down = torch.cat([low[:, 1:], low[:, -1:]], 1)
    diag = torch.cat([right[:, 1:], right[:, -1:]], 1)
    mixed = (low != right) | (low != down) | (low != diag)
    y0, y1, ly = _bilinear_taps(h, big_h, dev)
    x0, x1, lx = _bilinear_taps(w, big_w, dev)
    out = low[:, y0][:, :, x0]
    bi, by, bx = torch.nonzero(mixed[:, y0][:, :, x0], as_tuple=True)
    if bi.numel():
        lg = logits.permute(0, 2, 3, 1)
        wy, wx = ly[by, None].to(lg.dtype), lx[bx, None].to(lg.dtype)
        top = lg[bi, y0[by], x0[bx]] * (1 - wx) + lg[bi, y0[by], x1[bx]] * wx
        bottom = lg[bi, y1[by], x0[bx]] * (1 - wx) + lg[bi, y1[by], x1[bx]] * wx
        out[bi, by, bx] = (top * (1 - wy) + bottom * wy).argmax(1).to(torch.uint8)
    return out


def parse_size(text: str) -> tuple[int, int]:
    """``"1024x512"`` -> ``(1024, 512)``; raises ValueError with a readable message."""
    try:
        w, h = (int(v) for v in text.lower().replace(" ", "").split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1024x512") from None
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise ValueError(f"size {text!r} is outside 16..8192 pixels per side")
    return w, h


def resolve_device(device: str | None) -> torch.device:
    """``None``/``"auto"`` -> cuda when available, else cpu."""
    if device in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available on this machine")
    return dev


class Segmenter:
    """A zoo model ready to label frames.

    Args:
        model: zoo name (short forms allowed) or a ``ModelCfg``.
        size: network input ``(w, h)``; default the model's native size. Rounded to the model's
            size divisor.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``None`` for automatic.
        precision: ``fp32``, or ``fp16`` / ``bf16`` on CUDA (a CPU always runs fp32).
        backend: ``"torch"`` (default) or another backend name from ``infer.backends``.
        exact_labels: labels of bilinearly resized logits instead of the nearest-resized
            network-size labels (see :meth:`labels`).

    Example:
        >>> seg = Segmenter("espnetv2-s0.5-cityscapes", size=(512, 256))
        >>> labels = seg([frame])[0]  # frame: HxWx3 uint8 RGB numpy array
    """

    def __init__(
        self,
        model: str | ModelCfg,
        size: tuple[int, int] | None = None,
        device: str | None = "cpu",
        precision: str = "fp32",
        backend: str = "torch",
        exact_labels: bool = False,
    ) -> None:
        dev = resolve_device(device)
        net, cfg = create_model(model, device=dev, fold_bn=backend != "torch-plain")
        self._setup(net, cfg, size, dev, precision, backend)
        self.exact_labels = exact_labels

    @classmethod
    def from_module(
        cls, net: torch.nn.Module, cfg: ModelCfg, size: tuple[int, int] | None, device: torch.device,
        precision: str = "fp32", backend: str = "torch",
    ) -> Segmenter:
        """Wrap a network that is already built (e.g. one being trained); it must be in eval mode."""
        self = cls.__new__(cls)
        self._setup(net, cfg, size, device, precision, backend)
        return self

    def _setup(
        self, net: torch.nn.Module, cfg: ModelCfg, size: tuple[int, int] | None, device: torch.device,
        precision: str, backend: str,
    ) -> None:
        self.device = device
        self.cfg = cfg
        self.size = fit_size(size or cfg.input_size, cfg.size_divisor)
        dtypes = {"fp16": torch.float16, "bf16": torch.bfloat16}
        self.dtype = dtypes.get(precision, torch.float32) if device.type == "cuda" else torch.float32
        self.normalize = Normalizer(cfg.preprocess, self.size, device, self.dtype)
        self.backend: Backend = make_backend(backend, net, cfg, self.size, device, self.dtype)
        self.exact_labels = False

    @property
    def name(self) -> str:
        return self.cfg.name

    def to_device(self, frames: Sequence[np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Stack HxWx3 uint8 RGB frames into an ``(N, H, W, 3)`` tensor on the device."""
        if isinstance(frames, torch.Tensor):
            t = frames
        else:
            arr = frames if isinstance(frames, np.ndarray) and frames.ndim == 4 else np.stack(list(frames))
            t = torch.from_numpy(np.ascontiguousarray(arr))
        if self.device.type == "cuda":
            t = t.pin_memory() if not t.is_pinned() else t
            return t.to(self.device, non_blocking=True)
        return t

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return self.normalize(frames)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Network logits ``(N, C, h, w)`` at the network input size."""
        return self.backend(x)

    @staticmethod
    def labels(logits: torch.Tensor, out_hw: tuple[int, int] | None = None, exact: bool = False) -> torch.Tensor:
        """Class ids (uint8) at ``out_hw``.

        Default: arg-max at the network size, then nearest-neighbour resize of the labels, as the
        authors' scripts do (so masks reproduce their outputs). ``exact``: the labels of the logits
        bilinearly resized to ``out_hw``, computed without resizing C float maps
        (:func:`resized_argmax`).
        """
        if out_hw is None or tuple(logits.shape[2:]) == tuple(out_hw):
            return logits.argmax(1).to(torch.uint8)
        if exact:
            return resized_argmax(logits, out_hw)
        lab = logits.argmax(1, keepdim=True).to(torch.uint8)
        return F.interpolate(lab, size=out_hw, mode="nearest-exact")[:, 0]

    @torch.inference_mode()
    def __call__(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Label same-sized RGB frames; returns one HxW uint8 class-id map per frame."""
        t = self.to_device(frames)
        lab = self.labels(self.infer(self.preprocess(t)), (t.shape[1], t.shape[2]), self.exact_labels)
        return list(lab.cpu().numpy())
