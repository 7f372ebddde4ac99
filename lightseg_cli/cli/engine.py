"""Turns the shared engine options (profile, device, precision, backend, size) into a Segmenter."""

from __future__ import annotations

from .. import profiles
from ..errors import UsageError
from ..infer.segmenter import Segmenter
from ..pipeline.pipeline import PipelineCfg
from ..profiles import Settings
from ..zoo import get_cfg
from ..zoo.classmap import classes_as as map_classes
from . import console
from .options import size_arg


def build_segmenter(
    model: str,
    *,
    profile: str = "auto",
    size: str | None = None,
    device: str | None = None,
    half: bool | None = None,
    batch: int | None = None,
    workers: int | None = None,
    threads: int | None = None,
    backend: str | None = None,
    exact_labels: bool = False,
    classes_as: str | None = None,
    quiet: bool = False,
) -> tuple[Segmenter, Settings]:
    precision = None if half is None else ("fp16" if half else "fp32")
    settings = profiles.resolve(profile, device=device, precision=precision, batch=batch, backend=backend,
                                workers=workers, threads=threads)
    if not quiet:
        for note in settings.notes:
            if not note.startswith("auto:"):
                console.warn(note)
    cfg = get_cfg(model)
    if classes_as:
        cfg = map_classes(cfg, classes_as)
    net_size = size_arg(size) or profiles.size_for(settings, cfg.arch, cfg.dataset.name)
    try:
        seg = Segmenter(cfg, size=net_size, device=settings.device, precision=settings.precision,
                        backend=settings.backend, exact_labels=exact_labels)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return seg, settings


def pipeline_cfg(settings: Settings, *, stride: int = 1, buffer: int = 2, max_frames: int | None = None) -> PipelineCfg:
    """The pipeline part of a resolved profile."""
    return PipelineCfg(batch=settings.batch, stride=stride, buffer=buffer, queue=settings.queue,
                       workers=settings.workers, threads=settings.threads, max_frames=max_frames,
                       overlay_on_device=settings.overlay == "device")
