"""Video files out: the H.264 overlay video and the lossless class-id video (PyAV).

The container is written under a hidden temporary name and renamed when it is finalised, so the
final name only ever holds a complete, playable file. ``close()`` always flushes the encoder and
writes the trailer, including after an error or an interrupt.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import OutputError
from ..io import atomic


class VideoWriter:
    """Constant-frame-rate video writer.

    Args:
        path: final file name (``.mp4`` for H.264, ``.mkv`` for FFV1).
        size: (width, height) of every frame; frames of another size are resized.
        fps: frame rate as an exact fraction (29.97 stays 30000/1001).
        codec: ``libx264`` (yuv420p, browser-playable) or ``ffv1`` (lossless gray8 for class ids).
        crf, preset: x264 quality and speed (a profile's ``encoder_preset``; benchmarks/x264_presets.py
            measures what each costs in time and bytes; the encoder shares the CPU with inference).
        encoder_threads: threads the encoder may use (0 = FFmpeg's choice).

    Example:
        >>> with VideoWriter(Path("out.mp4"), (960, 540), Fraction(25)) as w:
        ...     w.write(frame)
    """

    def __init__(
        self,
        path: Path,
        size: tuple[int, int],
        fps: Fraction,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "superfast",
        encoder_threads: int = 0,
    ) -> None:
        self.path = path
        self.tmp = atomic.temp_path(path)
        self.gray = codec == "ffv1"
        w, h = size
        if not self.gray:  # yuv420p needs even sides
            w, h = w - w % 2, h - h % 2
        self.size = (w, h)
        # +faststart moves the index to the front so browsers can play while downloading.
        opts = {"movflags": "+faststart"} if path.suffix in (".mp4", ".mov") else {}
        self.container = av.open(str(self.tmp), "w", format="matroska" if path.suffix == ".mkv" else None,
                                 options=opts)
        self.stream = self.container.add_stream(codec, rate=fps)
        self.stream.width, self.stream.height = w, h
        self.stream.pix_fmt = "gray" if self.gray else "yuv420p"
        self.stream.time_base = Fraction(1, 1) / fps
        if codec == "libx264":
            self.stream.options = {"crf": str(crf), "preset": preset}
        if encoder_threads:
            self.stream.codec_context.thread_count = encoder_threads
        self.frames = 0
        self._closed = False

    def write(self, image: np.ndarray) -> None:
        """Append one frame: HxWx3 uint8 RGB, or HxW uint8 for the gray (class-id) writer, or for
        the yuv420p writer an I420 image of its size (``draw/yuv.py``), which is encoded as it is."""
        w, h = self.size
        if image.ndim == 2 and not self.gray:
            if image.shape == (h * 3 // 2, w):
                self._encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="yuv420p"))
                return
            image = cv2.cvtColor(image, cv2.COLOR_YUV2RGB_I420)
        if image.shape[1] != w or image.shape[0] != h:
            if image.shape[1] >= w and image.shape[0] >= h and image.shape[1] - w <= 1 and image.shape[0] - h <= 1:
                image = image[:h, :w]
            else:
                interp = cv2.INTER_NEAREST if self.gray else cv2.INTER_AREA
                image = cv2.resize(image, (w, h), interpolation=interp)
        if self.gray:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray")
        else:  # OpenCV's BT.601 conversion: a third of swscale's cost here, the same PSNR after x264
            vf = av.VideoFrame.from_ndarray(cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420), format="yuv420p")
        self._encode(vf)

    def _encode(self, vf: av.VideoFrame) -> None:
        vf.pts = self.frames
        try:
            for packet in self.stream.encode(vf):
                self.container.mux(packet)
        except (av.error.FFmpegError, OSError) as e:
            raise OutputError(f"{self.path}: cannot write ({getattr(e, 'strerror', None) or e})") from None
        self.frames += 1

    def close(self) -> Path | None:
        """Flush and finalise; returns the final path, or None when no frame was written."""
        if self._closed:
            return self.path if self.path.exists() else None
        self._closed = True
        try:
            try:
                for packet in self.stream.encode(None):
                    self.container.mux(packet)
            finally:
                self.container.close()
        except (av.error.FFmpegError, OSError) as e:
            # Without its trailer the file would not play: never leave it under the final name.
            self.tmp.unlink(missing_ok=True)
            raise OutputError(f"{self.path}: could not be finalised ({getattr(e, 'strerror', None) or e})") from None
        if self.frames == 0:
            self.tmp.unlink(missing_ok=True)
            return None
        atomic.commit(self.tmp, self.path)
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
