"""Where a frame is drawn: class colours blended over the frame, and a legend.

``Overlay.annotate(frames, labels)`` works on the device the labels are on: on CUDA it colourises
and blends with integer tensor ops and only the finished uint8 image goes to the host; on the CPU
every step is one pass over the frame (``benchmarks/postprocess.py`` times each):

* colours: one palette lookup, the labels indexing a 256-entry table of packed RGBA words
  (``np.take``), whose alpha byte one ``cvtColor`` drops; classes not drawn are black there;
* blend: ``cv2.addWeighted`` of the frame and the colour image; with ``--classes``, the pixels of
  the other classes are copied back from the frame through a mask that a second lookup gives;
* legend: the swatches and names of a set of classes in view are rendered once and cached, then
  blended in with one ``addWeighted`` through their mask.

``Overlay.annotate_i420`` draws the same overlay straight onto the I420 planes an H.264 encoder
takes (``draw/yuv.py``): the blend is linear, so blending the frame's Y, U and V with the classes'
Y, U and V is blending in RGB and converting after, on half the bytes and with no conversion of
the drawn frame (colours by one single-channel lookup per plane, chroma from the top-left label
of each 2x2 block).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import torch

from . import yuv

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
        rgba = np.zeros((256, 4), np.uint8)
        rgba[:, :3] = lut
        self._lut_rgba = rgba.view(np.uint32)[:, 0]  # one word per class: its bytes are R, G, B, 0
        self._undrawn_cv = np.where(drawn, 0, 255).astype(np.uint8).reshape(256, 1)
        self.all_drawn = bool(drawn[:n].all())
        self._torch: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}
        self._legends: dict[tuple, tuple[np.ndarray, np.ndarray] | None] = {}
        self._legends_i420: dict[tuple, tuple[tuple[np.ndarray, ...], tuple[np.ndarray, np.ndarray]]] = {}
        self._lut_yuv = [np.ascontiguousarray(p).reshape(256, 1) for p in yuv.palette(lut)]

    # --- host (CPU) path -------------------------------------------------------------------
    def colorize_np(self, labels: np.ndarray) -> np.ndarray:
        """HxW uint8 labels -> HxWx3 uint8 RGB colours, by one lookup of packed RGBA words."""
        rgba = np.take(self._lut_rgba, labels).view(np.uint8).reshape(*labels.shape, 4)
        return cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB)

    def annotate_np(self, frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """HxWx3 uint8 RGB frame + HxW uint8 labels -> uint8 RGB image."""
        color = self.colorize_np(labels)
        if self.style.mode == "mask":
            out = color
        else:
            a = self.style.alpha
            out = cv2.addWeighted(frame, 1.0 - a, color, a, 0.0)
            if not self.all_drawn:  # the classes not drawn show the frame as it is
                cv2.copyTo(frame, cv2.LUT(labels, self._undrawn_cv), out)
            if self.style.mode == "side-by-side":
                out = np.concatenate([frame, out], axis=1)
        if self.style.legend:
            self.draw_legend(out, labels)
        return out

    # --- host path onto I420 planes (the encoder's input) ----------------------------------
    def annotate_i420(self, frames: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                      decoded: Sequence[np.ndarray | None] = ()) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 RGB frames + ``(N, H, W)`` uint8 labels on the host -> ``(N, H', W')``
        I420 images (``yuv.planes`` splits one), the overlay that :meth:`annotate_np` draws
        converted as ``cv2.COLOR_RGB2YUV_I420`` would convert it (within rounding; on a 2x2 block
        of mixed classes the chroma is its top-left pixel's). Odd sides lose their last pixel row
        or column, as the yuv420p encoder does. ``decoded``: per frame, the I420 planes it was
        decoded from (``Frame.i420``), blended instead of the RGB frame converted back."""
        f, lab = np.asarray(frames), np.asarray(labels)
        planes = list(decoded) + [None] * (len(lab) - len(decoded))
        if len(lab) == 1:  # a view, not np.stack's copy
            return self._annotate_i420(f[0], lab[0], planes[0])[None]
        return np.stack([self._annotate_i420(f[i], lab[i], planes[i]) for i in range(len(lab))])

    def _annotate_i420(self, frame: np.ndarray, labels: np.ndarray, decoded: np.ndarray | None) -> np.ndarray:
        h, w = frame.shape[0] & ~1, frame.shape[1] & ~1
        frame, labels = frame[:h, :w], labels[:h, :w]
        if self.style.mode == "side-by-side":  # twice as wide: drawn in RGB and converted
            return cv2.cvtColor(self.annotate_np(frame, labels), cv2.COLOR_RGB2YUV_I420)
        out = np.empty((h * 3 // 2, w), np.uint8)
        targets = yuv.planes(out)
        chroma_labels = np.ascontiguousarray(labels[::2, ::2])
        plane_labels = (labels, chroma_labels, chroma_labels)
        if self.style.mode == "mask":
            for plane, lab, lut in zip(targets, plane_labels, self._lut_yuv):
                cv2.LUT(lab, lut, dst=plane)
        else:
            a = self.style.alpha
            if decoded is None or decoded.shape != out.shape:
                decoded = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420)
            source = yuv.planes(decoded)
            for plane, src, lab, lut in zip(targets, source, plane_labels, self._lut_yuv):
                cv2.addWeighted(src, 1.0 - a, cv2.LUT(lab, lut), a, 0.0, dst=plane)
                if not self.all_drawn:  # the classes not drawn show the frame as it is
                    cv2.copyTo(src, cv2.LUT(lab, self._undrawn_cv), plane)
        if self.style.legend:
            self._draw_legend_i420(targets, labels)
        return out

    def _draw_legend_i420(self, targets: tuple[np.ndarray, ...], labels: np.ndarray) -> None:
        """:meth:`draw_legend` on I420 planes: the cached legend block converted once."""
        key = self._legend_key(labels, targets[0].shape[0], targets[0].shape[1])
        if key is None:
            return
        if key not in self._legends_i420:
            legend = self._legend(*key)
            if legend is None:
                return
            if len(self._legends_i420) > 4096:
                self._legends_i420.clear()
            self._legends_i420[key] = yuv.block(*legend)
        blocks, (mask, chroma_mask) = self._legends_i420[key]
        for i, (plane, block) in enumerate(zip(targets, blocks)):
            at = 4 if i == 0 else 2
            region = plane[at : at + block.shape[0], at : at + block.shape[1]]
            cv2.copyTo(cv2.addWeighted(region, 0.25, block, 0.75, 0.0), mask if i == 0 else chroma_mask, region)

    # --- device (tensor) path --------------------------------------------------------------
    def annotate(self, frames: torch.Tensor, labels: torch.Tensor) -> np.ndarray:
        """``(N, H, W, 3)`` uint8 frames + ``(N, H, W)`` uint8 labels, on any device -> host uint8
        ``(N, H, W', 3)``. CPU tensors take the OpenCV path."""
        if labels.device.type == "cpu":
            f, lab = frames.numpy(), labels.numpy()
            if len(lab) == 1:  # a view, not np.stack's copy of the whole image
                return self.annotate_np(f[0], lab[0])[None]
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
        """In place: a column of colour swatches and names for the drawn classes in view (those
        covering at least ``min_fraction`` of a 1-in-16 sample of the pixels)."""
        key = self._legend_key(labels, image.shape[0], image.shape[1], min_fraction)
        legend = self._legend(*key) if key is not None else None
        if legend is None:
            return
        block, mask = legend
        region = image[4 : 4 + block.shape[0], 4 : 4 + block.shape[1]]
        cv2.copyTo(cv2.addWeighted(region, 0.25, block, 0.75, 0.0), mask, region)

    def _legend_key(self, labels: np.ndarray, height: int, width: int,
                    min_fraction: float = 0.005) -> tuple[tuple[int, ...], int, int] | None:
        """The drawn classes in view (those covering at least ``min_fraction`` of a 1-in-16 sample
        of the pixels) and the image size: what a legend is cached by; None when no class is."""
        counts = np.bincount(labels[::4, ::4].reshape(-1), minlength=256)
        total = max(int(counts.sum()), 1)
        present = tuple(int(c) for c in np.nonzero(counts)[0] if counts[c] / total >= min_fraction and self.drawn[c]
                        and c < len(self.names))
        return (present, height, width) if present else None

    def _legend(self, present: tuple[int, ...], height: int, width: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The legend of ``present`` for an image of this size: rows of swatch + name stacked from
        the top (as many as fit, in class order), and the mask of the pixels they cover. Cached."""
        h = max(14, min(28, height // 30))
        key = (present, h, height, width)
        if key in self._legends:
            return self._legends[key]
        rows = []
        y = 4
        for c in present:
            row = _legend_row(self.names[c], tuple(int(v) for v in self.lut[c]), h)  # type: ignore[arg-type]
            if y + row.shape[0] > height or 4 + row.shape[1] > width:
                break
            rows.append(row)
            y += row.shape[0]
        legend = None
        if rows:
            block = np.zeros((sum(r.shape[0] for r in rows), max(r.shape[1] for r in rows), 3), np.uint8)
            mask = np.zeros(block.shape[:2], np.uint8)
            y = 0
            for r in rows:
                block[y : y + r.shape[0], : r.shape[1]] = r
                mask[y : y + r.shape[0], : r.shape[1]] = 255
                y += r.shape[0]
            legend = (block, mask)
        if len(self._legends) > 4096:  # bounded: a run sees a handful of class sets
            self._legends.clear()
        self._legends[key] = legend
        return legend
