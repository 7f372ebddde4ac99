"""One SOURCE string -> one frame source. The only place that decides what a SOURCE is.

===================================  ===========================================
SOURCE                               resolved to
===================================  ===========================================
``-``                                a video on stdin (PyAV)
``0``, ``1``, ``/dev/video0``        a camera (OpenCV VideoCapture)
``csi://0``, ``csi://1?width=1280&`` a Jetson CSI camera (GStreamer, Argus);
``height=720&fps=60&flip=2``         mode 1920x1080 at 30 fps unless given
``rtsp://``, ``rtmp://``,            a live network stream (PyAV): stale frames
``udp://``, ``tcp://``, ``srt://``,  are dropped, lost streams are reopened
``http(s)://`` without a video ext
``http(s)://…/clip.mp4``             a remote video file (PyAV), never drops
an image file                        one image
a folder                             its images, natural order
a pattern with ``*``, ``?``, ``[``   the matching images, natural order
a list file (``.txt``, ``.lst``)     the images it lists, one a line (first
                                     column, relative to the list's folder)
any other file                       a video file (anything FFmpeg decodes)
===================================  ===========================================
"""

from __future__ import annotations

import glob
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qsl, urlparse

from ..errors import ImageError, SourceError
from ..profiles import ROOT, detect_jetson, gstreamer_in_opencv
from ..types import SourceKind
from .base import FrameSource, natural_key, redact
from .camera import CameraSource, csi_pipeline
from .gstreamer import GStreamerSource
from .images import IMAGE_SUFFIXES, ImageSource
from .video import AVSource

STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "http", "https", "rtp"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".ts", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv"})
LIST_SUFFIXES = frozenset({".txt", ".lst"})


def classify(spec: str) -> SourceKind:
    """The kind of source a SOURCE string names (without opening it)."""
    if spec == "-":
        return "stdin"
    if re.fullmatch(r"\d+", spec) or re.fullmatch(r"/dev/video\d+", spec) or spec.lower().startswith("csi://"):
        return "camera"
    scheme = urlparse(spec).scheme.lower()
    if scheme in STREAM_SCHEMES:
        if scheme in ("http", "https") and Path(urlparse(spec).path).suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        return "stream"
    if any(c in spec for c in "*?[") and not Path(spec).exists():
        return "images"
    p = Path(spec)
    if p.is_dir() or p.suffix.lower() in LIST_SUFFIXES:
        return "images"
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "video"


def _listed(list_file: Path) -> list[Path]:
    """The files a list names: the first column of each line, relative to the list's folder
    (``image label`` pairs name their images); blank lines and ``#`` comments are left out."""
    try:
        lines = list_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise SourceError(f"{list_file}: cannot read the list ({getattr(e, 'strerror', None) or e})") from None
    firsts = (line.split()[0] for line in lines if line.strip() and not line.lstrip().startswith("#"))
    return [list_file.parent / f for f in firsts]


def listed_files(spec: str) -> list[Path]:
    """Every file an ``images`` SOURCE names, of any kind: a folder's files or a pattern's matches
    in natural order, a list file's entries in its own order."""
    p = Path(spec)
    if p.is_file():
        return _listed(p)
    found = p.iterdir() if p.is_dir() else map(Path, glob.glob(spec, recursive=True))
    return sorted((q for q in found if q.is_file()), key=lambda q: natural_key(str(q)))


def of_kind(files: list[Path], suffixes: frozenset[str]) -> list[Path]:
    """The files among ``files`` with one of ``suffixes`` (IMAGE_SUFFIXES, VIDEO_SUFFIXES)."""
    return [f for f in files if f.suffix.lower() in suffixes]


def no_images(spec: str) -> SourceError:
    """The error for an ``images`` SOURCE that names no image."""
    p = Path(spec)
    why = (f"no images in this folder (supported: {', '.join(sorted(IMAGE_SUFFIXES))}; give videos one at a time, "
           "or the folder with --engine ray)" if p.is_dir()
           else "the list names no image files" if p.is_file()
           else "no such list file" if p.suffix.lower() in LIST_SUFFIXES
           else "the pattern matches no image files")
    return SourceError(f"{spec}: {why}")


def source_name(spec: str, kind: SourceKind) -> str:
    """A file-system-safe stem for output names."""
    if kind == "stdin":
        return "stdin"
    if kind == "camera":
        u = urlparse(spec)
        return f"csi{u.netloc}" if u.scheme.lower() == "csi" else "camera" + re.sub(r"\D", "", spec)
    if kind in ("stream", "video") and "://" in spec:
        u = urlparse(spec)
        base = Path(u.path).stem or (u.hostname or "stream")
        return re.sub(r"[^\w.-]+", "_", base) or "stream"
    if kind == "images" and not Path(spec).exists():
        return re.sub(r"[^\w.-]+", "_", Path(spec.split("*")[0]).name or Path(spec).parent.name) or "images"
    return Path(spec.rstrip("/\\")).stem or "source"


_CSI_OPTIONS = ("width", "height", "fps", "flip")


def csi_camera_pipeline(spec: str, sysroot: Path = ROOT) -> str:
    """The GStreamer pipeline for ``csi://N[?width=W&height=H&fps=F&flip=M]`` on a Jetson (detected
    under ``sysroot``); a :class:`SourceError` says why anywhere else or for a malformed SOURCE."""
    u = urlparse(spec)
    try:
        sensor = int(u.netloc)
        options = {k: int(v) for k, v in parse_qsl(u.query, strict_parsing=bool(u.query))}
    except ValueError:
        raise SourceError(f"{spec}: expected csi://N with a sensor number and optional "
                          "?width=W&height=H&fps=F&flip=M (integers)") from None
    unknown = set(options) - set(_CSI_OPTIONS)
    if unknown or u.path not in ("", "/"):
        raise SourceError(f"{spec}: unknown CSI camera option {', '.join(sorted(unknown)) or u.path} "
                          f"(known: {', '.join(_CSI_OPTIONS)})")
    if not detect_jetson(sysroot):
        raise SourceError(f"{spec}: CSI cameras are read through a Jetson's Argus camera service and this "
                          "machine is not a Jetson; for a USB camera use its number (0) or /dev/videoN")
    return csi_pipeline(sensor, **options)


def open_source(
    spec: str,
    *,
    timeout: float = 10.0,
    reconnect: int = 3,
    fmt: str | None = None,
    decoder: str = "pyav",
    skip: Callable[[str], bool] | None = None,
    sysroot: Path = ROOT,
) -> FrameSource:
    """Open a SOURCE; raises :class:`SourceError` with a one-line reason when it cannot be read.

    Args:
        spec: the SOURCE string (see the module table).
        timeout: seconds to wait for a live stream to open or deliver data.
        reconnect: reopen attempts for a live stream that drops.
        fmt: force an FFmpeg input format (e.g. ``mpegts`` for stdin).
        decoder: ``pyav`` (FFmpeg, software), ``pyav-hw`` (FFmpeg with the CUDA hardware decoder) or
            ``opencv-gstreamer`` (Jetson's NVDEC through GStreamer) for video files.
        skip: images, folders and globs: leave out the images whose output name (stem) it returns
            True for (``--skip-existing`` resumes a batch); other sources ignore it.
        sysroot: where ``csi://`` looks for the signs of a Jetson (``/``; tests fake one).

    Example:
        >>> src = open_source("<SOURCE_VIDEO_PATH>")
        >>> for frame in src: ...
    """
    kind = classify(spec)
    name = source_name(spec, kind)
    if kind == "stdin":
        return AVSource("-", "stdin", name, timeout=timeout, fmt=fmt)
    if kind == "camera" and "://" in spec:
        pipeline = csi_camera_pipeline(spec, sysroot)
        if not gstreamer_in_opencv():
            raise SourceError(f"{spec}: this OpenCV was built without GStreamer, which CSI cameras need "
                              "(use JetPack's OpenCV: python3-opencv)")
        return CameraSource(pipeline, name, gstreamer=True, uri=spec)
    if kind == "camera":
        return CameraSource(int(spec) if spec.isdigit() else spec, name)
    if kind == "stream" or "://" in spec:
        return AVSource(spec, kind, name, timeout=timeout, reconnect=reconnect, fmt=fmt, hwaccel=_hw(decoder))
    p = Path(spec)
    if kind == "images":
        paths = of_kind(listed_files(spec), IMAGE_SUFFIXES)
        if not paths:
            raise no_images(spec)
        return ImageSource(paths, spec, name, skip=skip)
    if not p.exists():
        raise SourceError(f"{spec}: no such file or folder")
    if not p.is_file():
        raise SourceError(f"{spec}: not a regular file")
    if p.stat().st_size == 0:
        raise SourceError(f"{spec}: empty file (0 bytes)")
    if kind == "image":
        try:
            return ImageSource([p], spec, name, single=True, skip=skip)
        except ImageError as e:
            raise SourceError(f"{spec}: {e.reason}") from None
    if decoder == "opencv-gstreamer":
        return GStreamerSource(p, name)
    return AVSource(p, "video", name, hwaccel=_hw(decoder))


def _hw(decoder: str) -> str | None:
    return "cuda" if decoder == "pyav-hw" else None


__all__ = ["classify", "csi_camera_pipeline", "listed_files", "no_images", "of_kind", "open_source", "redact",
           "source_name"]
