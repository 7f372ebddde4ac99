"""``lightseg bench``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

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
from .run import SourceArg


def bench(
    source: SourceArg,
    model: ModelOpt,
    size: SizeOpt = None,
    classes_as: ClassesAsOpt = None,
    frames: Annotated[int, typer.Option("--frames", min=1, help="Frames per timed run.")] = 100,
    repeat: Annotated[
        int, typer.Option("--repeat", min=1, help="Interleaved runs of each mode; medians are reported.")
    ] = 1,
    profile: ProfileOpt = "auto",
    device: DeviceOpt = None,
    half: HalfOpt = None,
    batch: BatchOpt = None,
    workers: WorkersOpt = None,
    threads: ThreadsOpt = None,
    post_workers: PostWorkersOpt = None,
    backend: BackendOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Pipelined vs sequential end-to-end FPS, per-stage times and the model-only rate."""
    seg, settings = build_segmenter(
        model,
        profile=profile,
        size=size,
        device=device,
        half=half,
        batch=batch,
        workers=workers,
        threads=threads,
        post_workers=post_workers,
        backend=backend,
        classes_as=classes_as,
        quiet=quiet or json_out,
    )
    opts = RunOptions(decoder=settings.decode, encoder=settings.encode, preset=settings.encoder_preset,
                      encoder_threads=settings.encoder_threads, pipeline=pipeline_cfg(settings))
    result = run_bench(
        source, seg, frames=frames, repeat=repeat, opts=opts, log=None if quiet or json_out else console.log
    )
    if json_out:
        console.print_json(result.to_json() | {"profile": settings.profile})
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
