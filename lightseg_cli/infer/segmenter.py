"""Where a frame is inferred: ``Segmenter`` = preprocessing + network + arg-max, on one device.

The three steps are separate methods so the pipeline can run them as stages, and timing can be
attributed to each. ``Segmenter.__call__`` chains them for one-off use.

Labels are taken at the network size and resized to the frame with nearest neighbour, as the
authors' scripts do; ``exact_labels`` gives the labels of bilinearly resized logits instead,
computed cheaply and exactly by ``resized_argmax`` (``labels.py``). Networks whose last step is a bilinear resize
of the logits (ESPNet-C, ESPNetv2, LPS-Net) skip it on the torch backend; ``sampled_argmax`` then
gives the same labels straight from the low-resolution logits.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..models.layers import LogitResize
from ..zoo import ModelCfg, create_model
from .backends import LOW_RES_LOGITS, Backend, make_backend
from .labels import nearest_exact, repeat_labels, resized_argmax, sampled_argmax, source_positions
from .preprocess import Normalizer, fit_size


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
        precision: ``fp32``, ``fp16`` / ``bf16`` on CUDA (a CPU runs those as fp32), or ``int8``
            (the model ``lightseg quantize`` wrote, on the openvino backend).
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
        if backend in LOW_RES_LOGITS:
            # Skip the network's final logit resize; ``labels`` samples the low-res logits instead.
            for m in net.modules():
                if isinstance(m, LogitResize):
                    m.deferred = True
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
        if precision not in ("fp32", "int8", *dtypes):
            raise ValueError(f"precision {precision!r}: use fp32, fp16, bf16 or int8 (build_segmenter resolves auto)")
        half_on_cpu = device.type != "cuda" and precision in dtypes
        self.precision = "fp32" if half_on_cpu else precision  # what runs (int8: a float32 input)
        self.dtype = dtypes.get(self.precision, torch.float32)
        self.normalize = Normalizer(cfg.preprocess, self.size, device, self.dtype)
        self.backend: Backend = make_backend(backend, net, cfg, self.size, device, self.dtype, self.precision)
        self.exact_labels = False
        self._grids: dict[tuple, tuple] = {}
        # The final resize the network would have done, when it was skipped (see ``labels``).
        self.logit_resize = next((m for m in net.modules() if isinstance(m, LogitResize) and m.deferred), None)

    @property
    def name(self) -> str:
        return self.cfg.name

    def to_device(self, frames: Sequence[np.ndarray] | np.ndarray | torch.Tensor) -> torch.Tensor:
        """Stack HxWx3 uint8 RGB frames into an ``(N, H, W, 3)`` tensor on the device."""
        if isinstance(frames, torch.Tensor):
            t = frames
        else:
            if isinstance(frames, np.ndarray) and frames.ndim == 4:
                arr = frames
            else:
                frames = list(frames)  # one frame: a view of it; np.stack would copy it whole
                arr = frames[0][None] if len(frames) == 1 else np.stack(frames)
            arr = np.ascontiguousarray(arr)
            t = torch.from_numpy(arr if arr.flags.writeable else arr.copy())
        if self.device.type == "cuda":
            t = t.pin_memory() if not t.is_pinned() else t
            return t.to(self.device, non_blocking=True)
        return t

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        return self.normalize(frames)

    def infer(self, x: torch.Tensor) -> torch.Tensor:
        """Network logits ``(N, C, h, w)`` at the network input size."""
        return self.backend(x)

    def full_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The logits of the whole network at its input size, applying the final resize if it
        was skipped."""
        net_hw = (self.size[1], self.size[0])
        if self.logit_resize is None or tuple(logits.shape[2:]) == net_hw:
            return logits
        return F.interpolate(logits, size=net_hw, mode="bilinear", align_corners=self.logit_resize.align_corners)

    def labels(self, logits: torch.Tensor, out_hw: tuple[int, int] | None = None, exact: bool = False) -> torch.Tensor:
        """Class ids (uint8) at ``out_hw`` (default: the network input size).

        Default: arg-max at the network size, then nearest-neighbour resize of the labels, as the
        authors' scripts do (so masks reproduce their outputs). ``exact``: the labels of the logits
        bilinearly resized to ``out_hw``, computed without resizing C float maps
        (:func:`resized_argmax`). Low-resolution logits (the network's final resize was skipped)
        give the same labels as the full network would, sampled where they are needed.

        The cost follows the output, not the logits: along an axis where the frame is larger than
        the network input, the labels are taken at the network size and then repeated as uint8
        (the nearest resize picks network-size labels, so this is the same answer as sampling at
        the frame size, at a fraction of the samples); along an axis where it is smaller, only the
        rows/columns the nearest resize keeps are sampled.
        """
        net_hw = (self.size[1], self.size[0])
        out_hw = tuple(out_hw or net_hw)  # type: ignore[assignment]
        if self.logit_resize is not None and tuple(logits.shape[2:]) != net_hw:
            if exact:
                logits = self.full_logits(logits)
            else:
                ys, xs, yi, xi = self._label_grid(tuple(logits.shape[2:]), out_hw, logits.device)  # type: ignore[arg-type]
                return repeat_labels(sampled_argmax(logits, ys, xs), yi, xi)
        if tuple(logits.shape[2:]) == out_hw:
            return logits.argmax(1).to(torch.uint8)
        if exact:
            return resized_argmax(logits, out_hw)  # type: ignore[arg-type]
        lab = logits.argmax(1, keepdim=True).to(torch.uint8)
        return F.interpolate(lab, size=out_hw, mode="nearest-exact")[:, 0]

    def _label_grid(
        self, low_hw: tuple[int, int], out_hw: tuple[int, int], device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Where :meth:`labels` samples low-res logits for ``out_hw``, per axis: the source
        positions to sample, and the uint8 repeat that follows (None: the samples are the output).
        Cached per sizes and device."""
        key = (low_hw, out_hw, device)
        grid = self._grids.get(key)
        if grid is None:
            ac = self.logit_resize.align_corners  # type: ignore[union-attr]
            axes = []
            for n_low, n_net, n_out in zip(low_hw, (self.size[1], self.size[0]), out_hw):
                pos = source_positions(n_low, n_net, ac, device)  # the skipped resize's sample points
                pick = nearest_exact(n_net, n_out, device)  # the network-size pixels the frame shows
                # Larger frame: sample each network pixel once, then repeat them (uint8); smaller: sample what shows.
                axes.append((pos, pick) if n_out > n_net else (pos[pick], None))
            (ys, yi), (xs, xi) = axes
            if device.type == "cpu":  # the repeat is a NumPy gather there (several times faster than torch's)
                yi, xi = (None if i is None else i.numpy() for i in (yi, xi))
            grid = self._grids[key] = (ys, xs, yi, xi)
        return grid

    @torch.inference_mode()
    def __call__(self, frames: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        """Label same-sized RGB frames; returns one HxW uint8 class-id map per frame."""
        t = self.to_device(frames)
        lab = self.labels(self.infer(self.preprocess(t)), (t.shape[1], t.shape[2]), self.exact_labels)
        return list(lab.cpu().numpy())
