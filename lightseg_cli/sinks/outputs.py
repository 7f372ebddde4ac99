"""Where results are written: masks, overlays, videos, per-frame statistics, a window.

Every sink takes ``Result`` objects in frame order through ``write`` and returns the files it
finalised from ``close``. Files are written atomically (``io/atomic.py``); ``close`` is always called,
also after errors and interrupts, so videos are finalised and playable.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import ClassVar, Protocol

import cv2
import numpy as np

from ..errors import OutputError, UsageError
from ..io import atomic
from ..types import Result, SourceInfo
from .video import VideoWriter


class Sink(Protocol):
    """Takes results in frame order (``write``) and returns the files it finalised (``close``).

    A sink also declares what it needs of the pipeline running it; the sinks here inherit the
    defaults and a sink that only has ``write`` and ``close`` gets them too:

    * ``needs_main_thread``: ``write`` must run on the thread that called ``run`` (a GUI window);
      the writing stage then runs there instead of in a thread of its own;
    * ``stop_requested()``, asked after each write: a reason (e.g. ``"window"``) when the user
      asked this sink to stop the run; reading then stops and what is queued is finished;
    * ``needs_overlay``: ``write`` reads ``result.overlay``. When no sink of a run does (masks,
      statistics, or nothing saved at all), the overlay is not drawn and ``overlay`` is None.
    * ``takes_i420``: ``write`` also takes the overlay as one I420 image (``draw/yuv.py``). When
      every sink that reads the overlay does (an overlay video alone), the host draws it on I420
      planes, the encoder's own input, instead of RGB.
    """

    needs_main_thread: ClassVar[bool] = False
    needs_overlay: ClassVar[bool] = True
    takes_i420: ClassVar[bool] = False

    def write(self, result: Result) -> None: ...

    def close(self) -> list[Path]: ...

    def stop_requested(self) -> str | None:
        return None


# Label maps are runs of equal values, row after row like the row above: the "up" filter and run-length
# matching write a 960x540 mask in 1.3 ms instead of libpng's adaptive filters' 4.2, and 36% smaller
# (python benchmarks/mask_png.py: 1.34 vs 4.20 ms, 6.9 vs 10.8 kB). OpenCV before 4.11 has no filter
# choice: level 1 alone there.
PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1] + (
    [cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP, cv2.IMWRITE_PNG_STRATEGY, cv2.IMWRITE_PNG_STRATEGY_RLE]
    if hasattr(cv2, "IMWRITE_PNG_FILTER") else [])


def encode_png(labels: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", labels, PNG_PARAMS)
    if not ok:
        raise OutputError("PNG encoding failed")
    return buf.tobytes()


def _write(path: Path, data: bytes) -> None:
    try:
        atomic.write_bytes(path, data)
    except OSError as e:
        raise OutputError(f"{path}: cannot write ({e.strerror or e})") from None


class MaskDir(Sink):
    """``DIR/masks/<name>.png``: single-channel PNGs, pixel value = class id."""

    needs_overlay = False

    def __init__(self, folder: Path, pattern: str) -> None:
        self.folder = folder
        self.pattern = pattern  # e.g. "{name}" or "clip_{index:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def path_for(self, name: str, index: int) -> Path:
        return self.folder / (self.pattern.format(name=name, index=index) + ".png")

    def write(self, result: Result) -> None:
        _write(self.path_for(result.frame.name, result.frame.index), encode_png(result.labels))
        self.count += 1

    def close(self) -> list[Path]:
        return [self.folder] if self.count else []


class OverlayDir(Sink):
    """``DIR/overlays/<name>.jpg``."""

    def __init__(self, folder: Path, quality: int = 90) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.quality = quality
        self.count = 0

    def write(self, result: Result) -> None:
        if result.overlay is None:
            return
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(result.overlay, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise OutputError("JPEG encoding failed")
        _write(self.folder / f"{result.frame.name}.jpg", buf.tobytes())
        self.count += 1

    def close(self) -> list[Path]:
        return [self.folder] if self.count else []


class OverlayVideo(Sink):
    """``DIR/<stem>_overlay.mp4`` (H.264, yuv420p) at the source's frame rate (divided by the stride)."""

    takes_i420 = True

    def __init__(self, path: Path, fps: Fraction, crf: int = 23, preset: str = "superfast",
                 codec: str = "libx264", threads: int = 0) -> None:
        self.path, self.fps, self.crf, self.preset, self.codec = path, fps, crf, preset, codec
        self.threads = threads  # encoder threads (0: FFmpeg's choice)
        self.writer: VideoWriter | None = None

    def write(self, result: Result) -> None:
        if result.overlay is None:
            return
        if self.writer is None:
            h, w = result.overlay.shape[:2]
            if result.overlay.ndim == 2:  # I420: the Y plane's rows, then half as many of U and V
                h = h * 2 // 3
            self.writer = VideoWriter(self.path, (w, h), self.fps, codec=self.codec, crf=self.crf, preset=self.preset,
                                      encoder_threads=self.threads)
        self.writer.write(result.overlay)

    def close(self) -> list[Path]:
        done = self.writer.close() if self.writer else None
        return [done] if done else []


class MaskVideo(Sink):
    """``DIR/<stem>_masks.mkv``: lossless FFV1 gray video whose pixel values are class ids."""

    needs_overlay = False

    def __init__(self, path: Path, fps: Fraction) -> None:
        self.path, self.fps = path, fps
        self.writer: VideoWriter | None = None

    def write(self, result: Result) -> None:
        if self.writer is None:
            h, w = result.labels.shape
            self.writer = VideoWriter(self.path, (w, h), self.fps, codec="ffv1")
        self.writer.write(result.labels)

    def close(self) -> list[Path]:
        done = self.writer.close() if self.writer else None
        return [done] if done else []


def stats_row(result: Result, class_names: tuple[str, ...]) -> dict:
    """A frame's line in ``<stem>_stats.jsonl``: index, time, name and per-class pixel fractions."""
    counts = np.bincount(result.labels.reshape(-1), minlength=len(class_names))[: len(class_names)]
    total = max(int(counts.sum()), 1)
    return {
        "index": result.frame.index,
        "time": None if result.frame.time is None else round(result.frame.time, 4),
        "name": result.frame.name or None,
        "fractions": {n: round(int(c) / total, 6) for n, c in zip(class_names, counts) if c},
    }


class StatsLog(Sink):
    """``DIR/<stem>_stats.jsonl``: per frame, index, time and per-class pixel fraction."""

    needs_overlay = False

    def __init__(self, path: Path, class_names: tuple[str, ...]) -> None:
        self.path = path
        self.tmp = atomic.temp_path(path)
        self.names = class_names
        self.f = open(self.tmp, "w")  # noqa: SIM115 - stays open for the whole run
        self.count = 0

    def write(self, result: Result) -> None:
        try:
            self.f.write(json.dumps(stats_row(result, self.names)) + "\n")
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write ({e.strerror or e})") from None
        self.count += 1

    def close(self) -> list[Path]:
        if self.f.closed:
            return [self.path] if self.path.exists() else []
        try:
            self.f.close()
        except OSError as e:
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: cannot write ({e.strerror or e})") from None
        if not self.count:
            self.tmp.unlink(missing_ok=True)
            return []
        atomic.commit(self.tmp, self.path)
        return [self.path]


class Window(Sink):
    """``--show``: an OpenCV window with the overlay and the live FPS; q or Esc stops the run.
    OpenCV's GUI calls must come from the main thread."""

    needs_main_thread = True

    def __init__(self, title: str, fps_text: Callable[[], str]) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            # OpenCV's GUI would abort the whole process without a display: refuse up front.
            raise UsageError("--show needs a display (DISPLAY is not set); use --no-save to measure without one")
        self.title = title
        self.fps_text = fps_text
        self._stop = False

    def write(self, result: Result) -> None:
        img = result.overlay if result.overlay is not None else result.frame.image
        bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
        cv2.putText(bgr, self.fps_text(), (10, bgr.shape[0] - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
        cv2.imshow(self.title, bgr)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self._stop = True

    def stop_requested(self) -> str | None:
        return "window" if self._stop else None

    def close(self) -> list[Path]:
        cv2.destroyAllWindows()
        return []


def output_dir(base: Path, exist_ok: bool) -> Path:
    """``base`` if it is new or empty (or ``exist_ok``), else ``base-2``, ``base-3``, ...;
    fails up front when the location cannot be written."""
    if base.exists() and not base.is_dir():
        raise OutputError(f"{base}: output path exists and is a file")
    out = base
    if not exist_ok:
        n = 2
        while out.exists() and any(out.iterdir()):
            out = base.with_name(f"{base.name}-{n}")
            n += 1
    try:
        out.mkdir(parents=True, exist_ok=True)
        atomic.remove_partials(out)  # leftovers of a killed run are never final outputs
        probe = out / ".lightseg-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise OutputError(f"{out}: output folder is not writable ({e.strerror or e})") from None
    return out


def video_fps(info: SourceInfo, stride: int) -> Fraction:
    fps = info.fps or Fraction(30)
    return fps / stride
