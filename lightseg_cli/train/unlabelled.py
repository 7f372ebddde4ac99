"""Unlabelled frames for distillation (``lightseg train --unlabelled``): images, and every Nth frame
of videos, resized to the network's whole-image input size like the labelled images.

A SOURCE is an image, a video, or a folder / glob / list file naming images and videos (e.g.
``'../shared/video/*.mp4'``). They are read by the frame sources of ``lightseg_cli.sources``: the
same image reader and PyAV decoder as ``lightseg run``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import SourceError, UsageError
from ..sources.base import FrameSource
from ..sources.images import IMAGE_SUFFIXES, ImageSource
from ..sources.resolve import VIDEO_SUFFIXES, classify, listed_files, of_kind, open_source, source_name
from ..types import Frame

MOST_PER_VIDEO = 300  # frames a video gives with the default stride: a few hundred at most


@dataclass
class Unlabelled:
    frames: list[np.ndarray] = field(default_factory=list)  # RGB uint8 at the input size
    counts: dict[str, int] = field(default_factory=dict)  # frames kept per source (its file or SOURCE)


def default_stride(frames: int | None, most: int = MOST_PER_VIDEO) -> int:
    """The smallest stride that keeps at most ``most`` of a video's ``frames`` (1 when unknown)."""
    return max(1, math.ceil((frames or 0) / most))


def _sources(spec: str) -> Iterator[FrameSource]:
    """The frame sources of one SOURCE, opened one at a time: its images as one, each video alone."""
    kind = classify(spec)
    if kind in ("image", "video"):
        yield open_source(spec)
        return
    if kind != "images":
        raise UsageError(f"--unlabelled {spec}: give images, videos, folders, globs or list files, not a {kind}")
    files = listed_files(spec)
    images, videos = of_kind(files, IMAGE_SUFFIXES), of_kind(files, VIDEO_SUFFIXES)
    if not images and not videos:
        raise SourceError(f"{spec}: names no image or video files")
    if images:
        yield ImageSource(images, spec, source_name(spec, kind))
    for video in videos:
        yield open_source(str(video))


def _resized(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (img.shape[1], img.shape[0]) == size:
        return img
    shrink = img.shape[1] > size[0] or img.shape[0] > size[1]
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def load_unlabelled(specs: Sequence[str], size: tuple[int, int], stride: int | None = None,
                    log: Callable[[str], None] | None = None) -> Unlabelled:
    """The frames of every SOURCE in ``specs`` at ``size`` (w, h): all images, and every
    ``stride``-th frame of each video (default: :func:`default_stride` of its frame count)."""
    found = Unlabelled()
    for spec in specs:
        for src in _sources(spec):
            step = (stride or default_stride(src.info.frames)) if src.info.kind == "video" else 1
            kept = [_resized(f.image, size) for f in src if isinstance(f, Frame) and f.index % step == 0]
            found.frames += kept
            found.counts[src.info.uri] = len(kept)
            if log:
                every = f", 1 frame in {step}" if step > 1 else ""
                skipped = f", {len(src.report.skipped)} unreadable" if src.report.skipped else ""
                log(f"unlabelled: {len(kept)} frames from {src.info.uri}{every}{skipped}")
    if log:
        log(f"added {len(found.frames)} unlabelled frames from {len(found.counts)} sources "
            "(distillation loss only)")
    return found

