"""Where a frame is drawn: class colours blended over the frame, and a legend.

``Overlay.annotate(frames, labels)`` works on the device the labels are on: on CUDA it colourises
and blends with integer tensor ops and only the finished uint8 image goes to the host; on the CPU
it uses OpenCV's LUT and addWeighted (SIMD, about 5x faster here than the same tensor ops).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

OverlayMode = Literal["blend", "mask", "side-by-side"]


@dataclass(frozen=True)
class OverlayStyle:
    alpha: float = 0.5
    mode: OverlayMode = "blend"
    classes: tuple[int, ...] | None = None  # ids to draw; None = all
    legend: bool = True


def _legend_row(name: str, color: tuple[int, int, int], height: int) -> np.ndarray:
    scale = height / 30.0
    (tw, th), _ = cv2.getTextSize(name, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    row = np.zeros((height, height + tw + 8, 3), np.uint8)
    row[2:-2, 2 : height - 2] = color
    cv2.putText(row, name, (height + 4, (height + th) // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                cv2.LINE_AA)
    return row


class Overlay:
    """Draws label maps over RGB frames.

    Args:
        palette: one RGB colour per class id.
        names: class names, for the legend.
        style: alpha, mode (blend | mask | side-by-side), which classes, legend on/off.

    Example:
        >>> ov = Overlay(cfg.dataset.palette, cfg.dataset.classes, OverlayStyle(alpha=0.6))
        >>> out = ov.annotate_np(frame, labels)
    """

    def __init__(
        self, palette: tuple[tuple[int, int, int], ...], names: tuple[str, ...], style: OverlayStyle = OverlayStyle()
    ) -> None:
        if not 0.0 <= style.alpha <= 1.0:
            raise ValueError(f"alpha {style.alpha} is outside 0..1")
        n = len(palette)
        self.style = style
        self.names = names
        drawn = np.zeros(256, bool)
        drawn[list(style.classes) if style.classes is not None else list(range(n))] = True
        self.drawn = drawn
        lut = np.zeros((256, 3), np.uint8)
        lut[:n] = np.array(palette, np.uint8)
        lut[~drawn] = 0
        self.lut = lut
        self._lut_cv = np.ascontiguousarray(lut.reshape(256, 1, 3))
        self._undrawn_cv = np.where(drawn, 0, 255).astype(np.uint8).reshape(256, 1)
        self.all_drawn = bool(drawn[:n].all())
        self._torch: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._rows: dict[tuple[int, int], np.ndarray] = {}

    # --- host (CPU) path -------------------------------------------------------------------
    def colorize_np(self, labels: np.ndarray) -> np.ndarray:
        return cv2.LUT(cv2.merge([labels, labels, labels]), self._lut_cv)

    def annotate_np(self, frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB frame + HxW uint8 labels -> uint8 RGB image."""
        color = self.colorize_np(labels)
        if self.style.mode == "mask":
            out = color
        else:
            a = self.style.alpha
            out = cv2.addWeighted(frame, 1.0 - a, color, a, 0.0)
            if not self.all_drawn:
                keep = cv2.LUT(labels, self._undrawn_cv).astype(bool)
                np.copyto(out, frame, where=keep[..., None])
            if self.style.mode == "side-by-side":
                out = np.concatenate([frame, out], axis=1)
        if self.style.legend:
            self.draw_legend(out, labels)
        return out

    # --- device (tensor) path --------------------------------------------------------------
    def annotate(self, frames: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 frames + ``(N, H, W)`` uint8 labels, on any device -> host uint8
        ``(N, H, W', 3)``. CPU tensors take the OpenCV path."""
        if labels.device.type == "cpu":
            f, lab = frames.numpy(), labels.numpy()
            return np.stack([self.annotate_np(f[i], lab[i]) for i in range(len(lab))])
        return self.annotate_tensor(frames, labels)

    def annotate_tensor(self, frames: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """The tensor-op path (used on GPUs; also runs on CPU tensors, which is how it is tested)."""
        lut, inv = self._device_luts(labels.device)
        idx = labels.long()
        if self.style.mode == "mask":
            out = self.lut_t(labels.device)[idx]
        else:
            blended = ((frames.to(torch.int16) * inv[idx][..., None] + lut[idx] + 128) >> 8).to(torch.uint8)
            out = torch.cat([frames, blended], dim=2) if self.style.mode == "side-by-side" else blended
        host = out.cpu().numpy()
        if self.style.legend:
            lab_host = labels.cpu().numpy()
            for i in range(len(host)):
                self.draw_legend(host[i], lab_host[i])
        return host

    def lut_t(self, device: torch.device) -> torch.Tensor:
        return torch.from_numpy(self.lut).to(device)

    def _device_luts(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._torch:
            a = np.where(self.drawn, round(self.style.alpha * 256), 0).astype(np.int16)
            premul = self.lut.astype(np.int16) * a[:, None]
            self._torch[device] = (torch.from_numpy(premul).to(device), torch.from_numpy(256 - a).to(device))
        return self._torch[device]

    # --- legend -----------------------------------------------------------------------------
    def draw_legend(self, image: np.ndarray, labels: np.ndarray, min_fraction: float = 0.005) -> None:
        """In place: a column of colour swatches and names for the drawn classes in view."""
        counts = np.bincount(labels[::4, ::4].reshape(-1), minlength=256)
        total = max(int(counts.sum()), 1)
        present = [c for c in np.nonzero(counts)[0] if counts[c] / total >= min_fraction and self.drawn[c]
                   and c < len(self.names)]
        h = max(14, min(28, image.shape[0] // 30))
        y = 4
        for c in present:
            key = (int(c), h)
            if key not in self._rows:
                self._rows[key] = _legend_row(self.names[c], tuple(int(v) for v in self.lut[c]), h)  # type: ignore[arg-type]
            row = self._rows[key]
            rh, rw = row.shape[:2]
            if y + rh > image.shape[0] or 4 + rw > image.shape[1]:
                break
            region = image[y : y + rh, 4 : 4 + rw]
            cv2.addWeighted(region, 0.25, row, 0.75, 0.0, dst=region)
            y += rh
