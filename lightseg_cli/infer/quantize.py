"""``lightseg quantize``: post-training int8 of a model for the openvino backend (NNCF).

The fp32 graph is the one the openvino backend runs; NNCF sets the int8 ranges of its activations
from real calibration images, each read, resized and normalised by the model's own preprocessing
(``Segmenter.preprocess``, what a run does to a frame). The int8 model goes to the user cache, where
``--precision int8`` finds it. The verdict ``--precision auto`` reads (``precision.py``) is measured
and stored by the command after this; an older verdict is removed here, as it measured another model.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import DataError, SourceError, UsageError
from ..io.images import read_rgb
from ..sources.images import IMAGE_SUFFIXES
from ..sources.resolve import listed_files, of_kind
from ..zoo.pretrained import ModelCfg
from .openvino import int8_path, require
from .precision import verdict_path
from .segmenter import Segmenter

BACKENDS = ("openvino",)  # the backends with an int8 path


@dataclass(frozen=True)
class QuantizeResult:
    cfg: ModelCfg
    model: str
    size: tuple[int, int]
    backend: str
    path: Path
    images: list[Path]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "size": list(self.size), "backend": self.backend, "path": str(self.path),
                "calibration_images": len(self.images), "seconds": round(self.seconds, 2)}


def calibration_images(spec: Path, n: int) -> list[Path]:
    """Up to ``n`` images spread evenly over a folder of images (a folder with ``images/`` and
    ``labels/``: its images) or a list file whose lines start with an image path, relative to the
    list's folder (``eval``'s ``image label`` lists work as they are)."""
    if not spec.exists():
        raise DataError(f"{spec}: no such calibration file or folder")
    folder = spec / "images" if (spec / "images").is_dir() else spec
    try:
        paths = of_kind(listed_files(str(folder)), IMAGE_SUFFIXES) if spec.is_dir() else listed_files(str(spec))
    except SourceError as e:
        raise DataError(f"{spec}: not a readable list of images ({e})") from None
    if not paths:
        raise DataError(f"{spec}: no calibration images in it")
    return paths[:: max(1, len(paths) // n)][:n]


def quantize(model: str | ModelCfg, calib: Path, size: tuple[int, int] | None = None, images: int = 32,
             backend: str = "openvino") -> QuantizeResult:
    """Write the int8 model of ``model`` at ``size`` (default: its native size), calibrated on up to
    ``images`` images of ``calib``. An unreadable image stops it (:class:`ImageError`)."""
    if backend not in BACKENDS:
        raise UsageError(f"quantize: no int8 path for backend {backend!r}; use {', '.join(BACKENDS)}")
    paths = calibration_images(calib, images)
    frames = [read_rgb(p) for p in paths]  # a bad set stops it before any model work
    seg = Segmenter(model, size=size, device="cpu", backend=backend)
    inputs = [seg.preprocess(seg.to_device([f])).numpy() for f in frames]
    os.environ.setdefault("NNCF_CI", "1")  # nncf sends usage telemetry unless this is set (its only effect)
    nncf = require("nncf")
    for handler in logging.getLogger("nncf").handlers:  # its log and progress bars: stderr, stdout is ours
        handler.setStream(sys.stderr)  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        int8 = nncf.quantize(seg.backend.model, nncf.Dataset(inputs), subset_size=len(inputs))  # type: ignore[attr-defined]
    out = int8_path(seg.cfg, seg.size)
    verdict_path(seg.cfg, seg.size).unlink(missing_ok=True)
    _save(int8, out)
    return QuantizeResult(seg.cfg, seg.name, seg.size, backend, out, paths, time.perf_counter() - t0)


def _save(model: Any, xml: Path) -> None:
    """Save OpenVINO IR (``xml`` and the .bin beside it) so that a complete .xml means a complete pair."""
    ov = require()
    xml.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=xml.parent, prefix=".quantize-") as tmp:
        ov.save_model(model, str(Path(tmp, "model.xml")), compress_to_fp16=False)
        xml.unlink(missing_ok=True)
        shutil.move(Path(tmp, "model.bin"), xml.with_suffix(".bin"))
        shutil.move(Path(tmp, "model.xml"), xml)
