"""Values that cross threads (frozen descriptions of a source and of one decoded frame), and the
one parser of ``WIDTHxHEIGHT`` sizes."""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

SourceKind = Literal["image", "images", "video", "stdin", "camera", "stream"]


@dataclass(frozen=True)
class SourceInfo:
    """What a SOURCE string resolved to (``lightseg probe`` prints this)."""

    kind: SourceKind
    uri: str  # credentials redacted
    name: str  # stem used for output names
    width: int | None = None  # None when the frames differ in size (image folders)
    height: int | None = None
    fps: Fraction | None = None
    frames: int | None = None  # None when unknown (live sources, some containers)
    codec: str | None = None
    decoder: str = ""  # the decoder that actually runs
    live: bool = False  # live sources drop stale frames instead of blocking
    fallback: str | None = None  # why the decoder asked for (e.g. pyav-hw) is not the one running

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "uri": self.uri,
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fps": None if self.fps is None else f"{self.fps.numerator}/{self.fps.denominator}",
            "fps_float": None if self.fps is None else round(float(self.fps), 6),
            "frames": self.frames,
            "codec": self.codec,
            "decoder": self.decoder,
            "live": self.live,
            "fallback": self.fallback,
        }


@dataclass(frozen=True)
class Frame:
    """One decoded frame: HxWx3 uint8 RGB, its position in the source and its time."""

    index: int
    image: np.ndarray
    time: float | None = None  # seconds from the start of the source
    name: str = ""  # output stem for image inputs ("" for video frames)
    path: Path | None = None  # the file it came from, for image inputs
    i420: np.ndarray | None = None  # the decoder's own limited-range I420 of an even-sided frame (draw/yuv.py)


@dataclass(frozen=True)
class Skipped:
    """An input item that could not be decoded; the run goes on and reports it."""

    what: str  # file path or "frame N" / "packet at 12.3s"
    reason: str
    index: int | None = None


@dataclass
class SourceReport:
    """Problems met while reading a source, filled in by the source as it goes."""

    skipped: list[Skipped] = field(default_factory=list)
    reconnects: int = 0
    outages: list[str] = field(default_factory=list)
    missing: int = 0  # frames the container announced that never decoded (damage, truncation)


@dataclass(frozen=True)
class Result:
    """A labelled frame on the host: class ids at frame size, and the drawn overlay if any."""

    frame: Frame
    labels: np.ndarray  # HxW uint8 class ids
    overlay: np.ndarray | None = None  # uint8 RGB, or I420 where every sink reading it takes that (Sink.takes_i420)


def parse_size(text: str) -> tuple[int, int]:
    """``"1024x512"`` -> ``(1024, 512)``; raises ValueError with a readable message."""
    try:
        w, h = (int(v) for v in text.lower().replace(" ", "").split("x"))
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1024x512") from None
    if w < 16 or h < 16 or w > 8192 or h > 8192:
        raise ValueError(f"size {text!r} is outside 16..8192 pixels per side")
    return w, h
