"""``lightseg bench``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..bench import PrecisionReport, compare_precisions
from ..bench import bench as run_bench
from ..pipeline.job import RunOptions
from . import console
from .engine import build_segmenter, pipeline_cfg
from .options import (
    BackendOpt,
    BatchOpt,
    ClassesAsOpt,
    DeviceOpt,
    HalfOpt,
    JsonOpt,
    ModelOpt,
    PostWorkersOpt,
    ProfileOpt,
    QuietOpt,
    SizeOpt,
    ThreadsOpt,
    WorkersOpt,
)
from .run import SOURCE_HELP

BenchPrecisionOpt = Annotated[str | None, typer.Option(
    "--precision", help="fp32, fp16, int8 or auto; with --eval, several separated by commas (e.g. fp32,int8) are "
    "compared: model-only FPS, labels equal to fp32's, mIoU. Default: from the profile.")]
EvalListOpt = Annotated[Path | None, typer.Option(
    "--eval", help="Labelled list (or images/labels folder) to compare precisions on, instead of timing SOURCE.")]


def bench(
    model: ModelOpt,
    source: Annotated[str | None, typer.Argument(help=f"{SOURCE_HELP} Not with --eval.", show_default=False)] = None,
    size: SizeOpt = None,
    classes_as: ClassesAsOpt = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per timed run.")] = 100,
    repeat: Annotated[
        int, typer.Option("--repeat", min=1, help="Interleaved runs of each mode; medians are reported.")
    ] = 1,
    profile: ProfileOpt = "auto",
    device: DeviceOpt = None,
    precision: BenchPrecisionOpt = None,
    half: HalfOpt = None,
    batch: BatchOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    post_workers: PostWorkersOpt = None,
    backend: BackendOpt = None,
    eval_list: EvalListOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pipelined vs sequential end-to-end FPS, per-stage times and the model-only rate of SOURCE; or,
    with --eval, precisions compared on a labelled list."""
    if (source is None) == (eval_list is None):
        raise typer.BadParameter("give SOURCE to time a run, or --eval LIST to compare precisions", param_hint="SOURCE")
    log = None if quiet or json_out else console.log

    def make(p: str | None):  # type: ignore[no-untyped-def]
        return build_segmenter(model, profile=profile, size=size, device=device, precision=p, half=half, batch=batch,
                               workers=workers, threads=threads, post_workers=post_workers, backend=backend,
                               classes_as=classes_as, quiet=quiet or json_out)

    if eval_list is not None:
        precisions = [p.strip() for p in (precision or "fp32").split(",") if p.strip()]
        report = compare_precisions(make, precisions, eval_list, rounds=repeat, log=log)
        print_precisions(report, json_out)
        return
    if precision and "," in precision:
        raise typer.BadParameter("several precisions are compared on a labelled list: add --eval LIST",
                                 param_hint="--precision")
    seg, settings = make(precision)
    opts = RunOptions(decoder=settings.decode, encoder=settings.encode, preset=settings.encoder_preset,
                      encoder_threads=settings.encoder_threads, pipeline=pipeline_cfg(settings))
    result = run_bench(source, seg, frames=frames, repeat=repeat, opts=opts, log=log)  # type: ignore[arg-type]
    if json_out:
        console.print_json(result.to_json() | {"profile": settings.profile, "precision": seg.precision})
        return
    t = Table(
        title=f"{result.model} at {result.size[0]}x{result.size[1]}, {result.frames} frames, "
        f"{result.backend} on {result.device}"
    )
    t.add_column("mode")
    t.add_column("FPS", justify="right")
    t.add_row("pipelined", f"{result.pipelined_fps:.2f}")
    t.add_row("sequential", f"{result.sequential_fps:.2f}")
    t.add_row("model only", f"{result.model_fps:.2f}")
    console.stdout.print(t)
    s = Table(title="median ms per frame")
    s.add_column("stage")
    s.add_column("sequential", justify="right")
    s.add_column("pipelined", justify="right")
    for k, v in result.stages_ms.items():
        p = result.pipelined_stages_ms.get(k)
        s.add_row(k, "-" if v is None else f"{v:.1f}", "-" if p is None else f"{p:.1f}")
    console.stdout.print(s)
    lay = result.layout
    console.stdout.print(
        f"pipelined layout: {lay.get('workers')} inference worker(s) x {lay.get('threads_per_worker')} thread(s), "
        f"{lay.get('postprocess_workers')} postprocess worker(s) ({lay.get('chosen_by')})", highlight=False)
    console.stdout.print(
        f"pipelined / sequential = {result.pipelined_vs_sequential:.2f}x; pipelined / model-only = "
        f"{result.pipelined_vs_model:.2f} (medians of per-repeat ratios)",
        highlight=False,
    )


def print_precisions(report: PrecisionReport, json_out: bool) -> None:
    """The comparison as a table and the line of what ``--precision auto`` makes of it, or as JSON."""
    if json_out:
        console.print_json(report.to_json())
        return
    t = Table(title=f"{report.model} at {report.size[0]}x{report.size[1]}: precisions on {report.data} "
                    f"({report.images} images), model-only FPS: medians of {report.rounds} rounds")
    for col in ("asked", "ran", "backend", "model FPS", "labels = fp32", "mIoU"):
        t.add_column(col, justify="right" if col in ("model FPS", "labels = fp32", "mIoU") else "left")
    for asked, r in report.results.items():
        t.add_row(asked, r.precision, r.backend, f"{r.model_fps:.2f}",
                  "-" if r.label_agreement is None else f"{r.label_agreement * 100:.2f}%",
                  "-" if r.miou is None else f"{r.miou * 100:.2f}")
    console.stdout.print(t)
    if auto := report.auto():
        console.stdout.print(f"auto: {auto[0]} ({auto[1]})", highlight=False, markup=False)
