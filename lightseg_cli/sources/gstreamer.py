"""Video files through OpenCV + GStreamer with NVIDIA's hardware decoder (Jetson).

Used when the profile asks for ``decode = "opencv-gstreamer"`` and OpenCV was built with
GStreamer (JetPack's OpenCV is); ``profiles.check`` falls back to PyAV everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import cv2

from ..errors import SourceError
from ..types import Frame, Skipped, SourceInfo, SourceReport

_DEMUX = {".mp4": "qtdemux", ".mov": "qtdemux", ".m4v": "qtdemux", ".mkv": "matroskademux", ".webm": "matroskademux",
          ".ts": "tsdemux"}


def pipeline_string(path: Path, codec: str = "h264") -> str:
    """A decode pipeline ending in BGR frames for OpenCV's appsink."""
    demux = _DEMUX.get(path.suffix.lower(), "decodebin")
    location = str(path).replace('"', '\\"')
    if demux == "decodebin":
        return f'filesrc location="{location}" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink'
    parse = "h265parse" if codec in ("hevc", "h265") else "h264parse"
    return (f'filesrc location="{location}" ! {demux} ! {parse} ! nvv4l2decoder ! nvvidconv ! '
            "video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink sync=false")


class GStreamerSource:
    def __init__(self, path: Path, name: str, codec: str = "h264") -> None:
        self.pipeline = pipeline_string(path, codec)
        self.cap = cv2.VideoCapture(self.pipeline, cv2.CAP_GSTREAMER)
        if not self.cap.isOpened():
            raise SourceError(f"{path}: GStreamer could not open it (pipeline: {self.pipeline})")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        frames = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.info = SourceInfo(
            kind="video", uri=str(path), name=name,
            width=int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None,
            height=int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None,
            fps=Fraction(fps).limit_denominator(1001) if fps > 0 else None,
            frames=frames if frames > 0 else None, codec=codec, decoder="opencv-gstreamer nvv4l2decoder",
        )
        self.report = SourceReport()
        self._closed = False

    def __iter__(self) -> Iterator[Frame | Skipped]:
        index = 0
        try:
            while not self._closed:
                ok, bgr = self.cap.read()
                if not ok:
                    break
                t = index / float(self.info.fps) if self.info.fps else None
                yield Frame(index=index, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time=t)
                index += 1
        finally:
            self.cap.release()
        if self.info.frames and index < self.info.frames and not self._closed:
            self.report.missing = self.info.frames - index
            self.report.outages.append(f"{self.report.missing} of {self.info.frames} frames could not be decoded")

    def close(self) -> None:
        self._closed = True
