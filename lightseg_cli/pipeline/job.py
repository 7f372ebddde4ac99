"""``lightseg run`` as a library call: resolve the source, build the segmenter, overlay and sinks
for the kind of source, run the pipeline and return its summary.

Outputs (under ``out``, default ``runs/<source name>/``, never silently reused: ``-2``, ``-3``...):

* images / folders: ``masks/<stem>.png`` and ``overlays/<stem>.jpg``;
* videos, streams, cameras: ``<stem>_overlay.mp4``; with ``save_masks`` ``masks/<stem>_<frame:06d>.png``;
  with ``mask_video`` ``<stem>_masks.mkv`` (lossless class ids); with ``stats``
  ``<stem>_stats.jsonl``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..draw.overlay import Overlay, OverlayMode, OverlayStyle
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, EXIT_SIGINT, EXIT_SIGTERM, UsageError
from ..infer.segmenter import Segmenter
from ..profiles import Settings
from ..sinks.outputs import (
    MaskDir,
    MaskVideo,
    OverlayDir,
    OverlayVideo,
    Sink,
    StatsLog,
    Window,
    output_dir,
    video_fps,
)
from ..sources import classify, open_source
from ..sources.base import FrameSource
from ..sources.resolve import source_name
from ..zoo.pretrained import ModelCfg
from .pipeline import Pipeline, PipelineCfg
from .stats import RunSummary


@dataclass(frozen=True)
class RunOptions:
    out: Path | None = None
    exist_ok: bool = False
    save: bool = True
    save_masks: bool = False  # video sources; image sources always save masks
    mask_video: bool = False
    stats: bool = False
    show: bool = False
    overlay: OverlayMode = "blend"
    alpha: float = 0.5
    classes: tuple[str, ...] | None = None
    legend: bool = True
    skip_existing: bool = False
    crf: int = 23
    preset: str = "superfast"  # x264 preset (the profile's encoder_preset)
    encoder_threads: int = 0  # x264 threads (the profile's encoder_threads; 0 = FFmpeg's choice)
    timeout: float = 10.0
    reconnect: int = 3
    input_format: str | None = None
    decoder: str = "pyav"  # pyav | pyav-hw | opencv-gstreamer
    encoder: str = "libx264"
    pipeline: PipelineCfg = PipelineCfg()


def class_ids(cfg: ModelCfg, classes: tuple[str, ...] | None) -> tuple[int, ...] | None:
    """Names (any case) or ids of ``--classes`` -> ids; a usage error names the unknown ones."""
    if not classes:
        return None
    names = [c.lower() for c in cfg.dataset.classes]
    ids, unknown = [], []
    for c in classes:
        c = c.strip().lower()
        if c.isdigit() and int(c) < len(names):
            ids.append(int(c))
        elif c in names:
            ids.append(names.index(c))
        else:
            unknown.append(c)
    if unknown:
        raise UsageError(f"--classes: {', '.join(unknown)} not in {cfg.name}'s classes ({', '.join(names)})")
    return tuple(ids)


def pipeline_cfg(settings: Settings, *, stride: int = 1, buffer: int = 2, max_frames: int | None = None) -> PipelineCfg:
    """The pipeline part of a resolved profile (``workers = "auto"``: the layout is measured when
    the pipeline is built)."""
    auto = settings.workers == "auto"
    post = settings.postprocess_workers
    return PipelineCfg(batch=settings.batch, stride=stride, buffer=buffer, queue=settings.queue,
                       workers=1 if auto else int(settings.workers), threads=settings.threads,
                       post_workers=(0 if auto else 1) if post == "auto" else int(post),
                       layout="auto" if auto else "fixed", max_frames=max_frames,
                       overlay_on_device=settings.overlay == "device")


def with_profile(opts: RunOptions, settings: Settings, preset: str | None = None, *, stride: int = 1,
                 buffer: int = 2, max_frames: int | None = None) -> RunOptions:
    """``opts`` with what a resolved profile decides: the x264 preset (unless ``preset`` is given),
    encoder threads, decoder, encoder and the pipeline."""
    return replace(opts, preset=preset or settings.encoder_preset, encoder_threads=settings.encoder_threads,
                   decoder=settings.decode, encoder=settings.encode,
                   pipeline=pipeline_cfg(settings, stride=stride, buffer=buffer, max_frames=max_frames))


MASKS = "masks"  # the folder of class-id PNGs in a run's output folder


def mask_file(name: str) -> str:
    """Where an image's mask goes, relative to the output folder."""
    return f"{MASKS}/{name}.png"


def overlay_video_file(name: str) -> str:
    """Where a video's overlay goes, relative to the output folder."""
    return f"{name}_overlay.mp4"


def _sinks(src_kind: str, name: str, out: Path, opts: RunOptions, seg: Segmenter, fps_text: Callable[[], str],
           fps) -> list[Sink]:
    sinks: list[Sink] = []
    if opts.save:
        if src_kind in ("image", "images"):
            sinks += [MaskDir(out / MASKS, "{name}"), OverlayDir(out / "overlays")]
        else:
            sinks.append(OverlayVideo(out / overlay_video_file(name), fps, crf=opts.crf, preset=opts.preset,
                                      codec=opts.encoder, threads=opts.encoder_threads))
            if opts.save_masks:
                sinks.append(MaskDir(out / MASKS, f"{name}_{{index:06d}}"))
            if opts.mask_video:
                sinks.append(MaskVideo(out / f"{name}_masks.mkv", fps))
        if opts.stats:
            sinks.append(StatsLog(out / f"{name}_stats.jsonl", seg.cfg.dataset.classes))
    if opts.show:
        sinks.append(Window(f"lightseg - {name}", fps_text))
    return sinks


@dataclass(frozen=True)
class Job:
    """A prepared run: the pipeline and the folder its outputs go to (None when nothing is saved)."""

    pipeline: Pipeline
    out_dir: Path | None

    @property
    def source(self) -> FrameSource:
        return self.pipeline.source

    def run(self, mode: str = "pipelined", handle_signals: bool = True) -> RunSummary:
        """Run the pipeline (see :meth:`Pipeline.run`) and return its summary."""
        return self.pipeline.run(mode, handle_signals=handle_signals)


def prepare(source_spec: str, segmenter: Segmenter, opts: RunOptions = RunOptions()) -> Job:
    """Open the source, choose the output folder and sinks; returns a job ready to run."""
    skip = None
    if opts.skip_existing and opts.save:
        # Resuming an image batch: the folder is --out or runs/<name> as is (exist_ok), so the masks
        # already there are known before the source is opened.
        out = opts.out or Path("runs") / source_name(source_spec, classify(source_spec))
        skip = lambda name: (out / mask_file(name)).exists()  # noqa: E731
    source = open_input(source_spec, opts, skip)
    try:
        base = opts.out or Path("runs") / source.info.name
        return assemble(source, segmenter, opts, output_dir(base, exist_ok=opts.exist_ok or opts.skip_existing)
                        if opts.save else None)
    except BaseException:
        source.close()
        raise


def open_input(source_spec: str, opts: RunOptions, skip: Callable[[str], bool] | None = None) -> FrameSource:
    """Open a run's SOURCE with its options (``skip``: images to leave out, see ``open_source``)."""
    return open_source(source_spec, timeout=opts.timeout, reconnect=opts.reconnect, fmt=opts.input_format,
                       decoder=opts.decoder, skip=skip)


def assemble(source: FrameSource, segmenter: Segmenter, opts: RunOptions, out: Path | None, name: str | None = None,
             extra_sinks: Sequence[Sink] = ()) -> Job:
    """A job over a source that is already open, writing into ``out`` as it is (None: nothing
    saved); ``name``: the stem of its outputs (default the source's); ``extra_sinks`` take the
    results too."""
    info = source.info
    cfg = segmenter.cfg
    style = OverlayStyle(alpha=opts.alpha, mode=opts.overlay, classes=class_ids(cfg, opts.classes), legend=opts.legend)
    overlay = Overlay(cfg.dataset.palette, cfg.dataset.classes, style)
    fps_text = lambda: f"{pipe.stats.fps.instant:.1f} FPS"  # noqa: E731 - only called while pipe runs
    sinks = _sinks(info.kind, name or info.name, out, opts, segmenter, fps_text,
                   video_fps(info, opts.pipeline.stride)) if out is not None or opts.show else []
    pipe = Pipeline(source, segmenter, overlay, [*sinks, *extra_sinks], opts.pipeline)
    return Job(pipe, out)


def exit_code(summary: RunSummary) -> int:
    """0: everything that could be decoded was processed (skipped inputs are reported, not fatal);
    1: partial, the run stopped on an error after some frames were written (outputs stay valid);
    3: nothing could be processed; 130/143: interrupted by SIGINT/SIGTERM."""
    if summary.interrupted == "SIGINT":
        return EXIT_SIGINT
    if summary.interrupted == "SIGTERM":
        return EXIT_SIGTERM
    if summary.frames == 0:
        nothing_to_do = summary.source.frames == 0 and not summary.skipped and not summary.error
        return EXIT_OK if nothing_to_do else EXIT_FAILED
    return EXIT_PARTIAL if summary.error else EXIT_OK
