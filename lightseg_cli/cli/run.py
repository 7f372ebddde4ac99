"""``lightseg run`` and ``lightseg probe``."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from ..distributed.work import WorkSpec
from ..pipeline.job import RunOptions, exit_code, prepare, with_profile
from ..pipeline.stats import RunSummary
from ..profiles import DECODERS, X264_PRESETS
from ..sources import open_source
from ..types import SourceInfo
from . import console
from .engine import build_segmenter
from .live import Progress
from .options import (
    BackendOpt,
    BatchOpt,
    ClassesAsOpt,
    DeviceOpt,
    HalfOpt,
    JsonOpt,
    ModelOpt,
    PostWorkersOpt,
    PrecisionOpt,
    ProfileOpt,
    SizeOpt,
    ThreadsOpt,
    WorkersOpt,
)

SOURCE_HELP = ("Video file, image, folder, glob, camera (0, /dev/video0), stream URL (rtsp://, udp://, tcp://, "
               "http://...) or - for stdin.")
SourceArg = Annotated[str, typer.Argument(help=SOURCE_HELP)]


def _warn_fallback(info: SourceInfo, shown: str | None = None) -> str | None:
    """One warning line when the decoder asked for is not the one decoding (not twice)."""
    if info.fallback and info.fallback != shown:
        console.warn(f"decoder: {info.fallback}; decoding in software")
    return info.fallback


def _report(summary: RunSummary, out: Path | str | None) -> None:
    s = summary
    what = "images" if s.source.kind in ("image", "images") else "frames"
    console.log(
        f"{s.frames} {what} in {s.seconds:.1f}s ({s.fps:.2f} FPS) with {s.model} at "
        f"{s.size[0]}x{s.size[1]} on {s.device}"
    )
    ms = ", ".join(f"{k} {v:.1f}" for k, v in s.stages_ms.items() if v is not None)
    if ms:
        console.log(f"per frame (ms): {ms}; bottleneck: {s.bottleneck}")
    if lay := s.layout:
        console.log(f"layout: {lay['workers']} inference worker(s) x {lay['threads_per_worker']} thread(s), "
                    f"{lay['postprocess_workers']} postprocess worker(s) ({lay['chosen_by']})")
    if s.dropped:
        console.log(f"dropped {s.dropped} stale frames (live source)")
    for item in s.skipped:
        console.warn(f"skipped {item.what}: {item.reason}")
    if s.skipped_count:
        console.warn(f"{s.skipped_count} input {what} skipped")
    for o in s.outages:
        console.warn(o)
    if s.error:
        console.error(s.error)
    if s.interrupted:
        console.warn(f"stopped early ({s.interrupted}); outputs written so far are complete")
    if out is not None and s.outputs:
        console.log(f"outputs in {out}")


ENGINES = ("local", "ray")


def _finish(summary: RunSummary, out: Path | str | None, json_out: bool, quiet: bool) -> None:
    """The end of a run, whichever engine ran it: the summary (or --json) and the exit code."""
    if json_out:
        console.print_json(summary.to_json())
    elif not quiet:
        _report(summary, out)
    elif summary.error:
        console.error(summary.error)
    raise typer.Exit(exit_code(summary))


def _run_ray(source: str, spec: WorkSpec, out: str | None, address: str | None, workers: int | None,
             gpus_per_worker: float, json_out: bool, quiet: bool) -> None:
    from ..distributed import ray_engine  # the optional extra: without it, one line saying how to install it

    cluster = ray_engine.Cluster(address=address, workers=workers, threads=spec.threads,
                                 gpus_per_worker=gpus_per_worker)
    job = ray_engine.prepare(source, spec, cluster, out=out)
    with Progress(job, f"{job.info.name} · {spec.model} on Ray ({address or 'local'})", plain=quiet):
        summary = job.run()
    _finish(summary, job.out_dir, json_out, quiet)


def run(
    source: SourceArg,
    model: ModelOpt,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            "-o",
            help="Output folder (default runs/<source name>; an existing non-empty folder gets a -N suffix). "
            "--engine ray: also a filesystem URI every worker reaches (s3://bucket/run1, file:///shared/run1).",
        ),
    ] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Write into --out even if it has files.")] = False,
    save_masks: Annotated[
        bool, typer.Option("--save-masks", help="Videos: also write a class-id PNG per frame.")
    ] = False,
    mask_video: Annotated[
        bool, typer.Option("--mask-video", help="Videos: also write a lossless class-id video (FFV1 .mkv).")
    ] = False,
    stats: Annotated[
        bool, typer.Option("--stats", help="Write <stem>_stats.jsonl (per-frame class fractions).")
    ] = False,
    no_save: Annotated[bool, typer.Option("--no-save", help="Write nothing (measuring only).")] = False,
    show: Annotated[bool, typer.Option("--show", help="Show the overlay and FPS in a window (q to stop).")] = False,
    overlay: Annotated[str, typer.Option("--overlay", help="blend, mask or side-by-side.")] = "blend",
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Opacity of the class colours.")] = 0.5,
    classes: Annotated[
        str | None, typer.Option("--classes", help="Comma-separated class names or ids to draw.")
    ] = None,
    exact_labels: Annotated[bool, typer.Option("--exact-labels", help="Labels of the logits bilinearly resized "
                                               "to the frame, instead of the authors' nearest-neighbour resize "
                                               "of the network-size labels.")] = False,
    legend: Annotated[bool, typer.Option("--legend/--no-legend", help="Draw a legend of the classes in view.")] = True,
    stride: Annotated[int, typer.Option("--stride", min=1, help="Process every Nth frame.")] = 1,
    buffer: Annotated[
        int,
        typer.Option(
            "--buffer", min=1, help="Live sources: frames kept waiting for inference; older ones are dropped."
        ),
    ] = 2,
    max_frames: Annotated[int | None, typer.Option("--frames", min=1, help="Stop after N frames.")] = None,
    skip_existing: Annotated[
        bool,
        typer.Option(
            "--skip-existing", help="Images: skip inputs whose mask already exists in --out (resume a batch)."
        ),
    ] = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Streams: seconds to wait for data.")] = 10.0,
    reconnect: Annotated[int, typer.Option("--reconnect", min=0, help="Streams: reconnect attempts.")] = 3,
    input_format: Annotated[
        str | None, typer.Option("--format", help="Force the input container format (e.g. mpegts for stdin).")
    ] = None,
    crf: Annotated[int, typer.Option("--crf", min=0, max=51, help="H.264 quality of the overlay video.")] = 23,
    preset: Annotated[str | None, typer.Option("--preset", help="x264 speed preset: ultrafast ... veryslow "
                                               "(default: the profile's encoder_preset).")] = None,
    size: SizeOpt = None,
    classes_as: ClassesAsOpt = None,
    profile: ProfileOpt = "auto",
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    half: HalfOpt = None,
    batch: BatchOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    post_workers: PostWorkersOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live panel and no report: one plain progress "
                                        "line every few seconds on stderr (errors still shown).")] = False,
    engine: Annotated[str, typer.Option("--engine", help="local (this process) or ray: image folders, globs, "
                                        "list files and videos on Ray Data workers, here or on a cluster "
                                        "(--workers: Ray workers, --threads: CPUs each).")] = "local",
    address: Annotated[str | None, typer.Option("--address", help="--engine ray: the cluster to join (auto, "
                                                "ray://head:10001); default a new Ray instance on this "
                                                "machine.")] = None,
    gpus_per_worker: Annotated[float, typer.Option("--gpus-per-worker", min=0.0, help="--engine ray: GPUs each "
                                                   "worker asks the cluster for (0.5: two workers share one).")] = 0.0,
) -> None:
    """Label a video, stream, camera, image or folder: overlays, masks and live FPS."""
    if overlay not in ("blend", "mask", "side-by-side"):
        raise typer.BadParameter("use blend, mask or side-by-side", param_hint="--overlay")
    if preset is not None and preset not in X264_PRESETS:
        raise typer.BadParameter(f"use one of {', '.join(X264_PRESETS)}", param_hint="--preset")
    if engine not in ENGINES:
        raise typer.BadParameter(f"use one of {', '.join(ENGINES)}", param_hint="--engine")
    uri = out if out and "://" in out else None
    if (uri or address or gpus_per_worker) and engine != "ray":
        raise typer.BadParameter("a URI --out, --address and --gpus-per-worker need --engine ray",
                                 param_hint="--engine")
    if show and engine == "ray":
        raise typer.BadParameter("--show needs the local engine", param_hint="--engine")
    build = partial(
        build_segmenter,
        model,
        profile=profile,
        size=size,
        device=device,
        precision=precision,
        half=half,
        batch=batch,
        workers=workers,
        threads=threads,
        post_workers=post_workers,
        backend=backend,
        exact_labels=exact_labels,
        classes_as=classes_as,
        quiet=quiet,
    )
    base = RunOptions(
        out=Path(out) if out and not uri else None,
        exist_ok=exist_ok,
        save=not no_save,
        save_masks=save_masks,
        mask_video=mask_video,
        stats=stats,
        show=show,
        overlay=overlay,
        alpha=alpha,  # type: ignore[arg-type]
        classes=tuple(c for c in classes.split(",") if c) if classes else None,
        legend=legend,
        skip_existing=skip_existing,
        crf=crf,
        timeout=timeout,
        reconnect=reconnect,
        input_format=input_format,
    )  # the profile's choices are added where the segmenter is built (here, or on each Ray worker)
    if engine == "ray":
        spec = WorkSpec(model, partial(build, quiet=True), base, preset=preset, stride=stride, max_frames=max_frames,
                        threads=threads or 1)
        return _run_ray(source, spec, uri, address, workers, gpus_per_worker, json_out, quiet)
    seg, settings = build()
    opts = with_profile(base, settings, preset, stride=stride, buffer=buffer, max_frames=max_frames)
    job = prepare(source, seg, opts)
    warned = None if quiet else _warn_fallback(job.source.info)
    title = f"{job.source.info.name} · {seg.name} ({seg.size[0]}x{seg.size[1]}, {seg.device}, {seg.backend.name})"
    with Progress(job.pipeline, title, plain=quiet):
        summary = job.run()
    if not quiet:
        _warn_fallback(summary.source, warned)  # found on the first frame
    _finish(summary, job.out_dir, json_out, quiet)


def probe(
    source: SourceArg,
    decoder: Annotated[str, typer.Option("--decoder", help="Video decoder to try: pyav, pyav-hw (FFmpeg's CUDA "
                                         "decoder) or opencv-gstreamer; the one that runs is reported.")] = "pyav",
    json_out: JsonOpt = False,
) -> None:
    """Show what SOURCE resolves to: kind, size, exact fps, frame count, codec, decoder."""
    if decoder not in DECODERS:
        raise typer.BadParameter(f"use one of {', '.join(DECODERS)}", param_hint="--decoder")
    src = open_source(source, decoder=decoder)
    try:
        if decoder == "pyav-hw" and src.info.kind == "video":
            next(iter(src), None)  # FFmpeg may only give up its hardware decoder on the first frame
        info = src.info
    finally:
        src.close()
    _warn_fallback(info)
    info = info.to_json()
    if json_out:
        console.print_json(info)
        return
    if info["fps"]:
        info["fps"] = f"{info['fps_float']:g} ({info['fps']})"  # 29.97 (30000/1001): exact, and readable
    for k, v in info.items():
        if k != "fps_float":
            console.stdout.print(f"{k:8} {v if v is not None else '-'}", highlight=False, markup=False)
