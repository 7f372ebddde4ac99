"""``lightseg eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from ..evaluate import evaluate
from . import console
from .engine import build_segmenter
from .options import (
    BackendOpt,
    ClassesAsOpt,
    DeviceOpt,
    HalfOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    ProfileOpt,
    QuietOpt,
    SizeOpt,
    ThreadsOpt,
)


def eval_(
    model: ModelOpt,
    data: Annotated[list[Path], typer.Option("--data", help="List file of 'image label' pairs (relative to the "
                                             "list's folder) or a folder with images/ and labels/. Repeat to score "
                                             "several sets side by side (e.g. val and a held-out sequence).")],
    size: SizeOpt = None,
    classes_as: ClassesAsOpt = None,
    profile: ProfileOpt = "auto",
    device: DeviceOpt = None,
    precision: PrecisionOpt = None,
    half: HalfOpt = None,
    backend: BackendOpt = None,
    threads: ThreadsOpt = None,
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mean IoU and per-class IoU of a model over labelled sets (labels outside its classes ignored).

    The model runs as `lightseg run` would run it (same profile, device, precision and backend), so
    what is scored is what runs."""
    seg, settings = build_segmenter(model, profile=profile, size=size, device=device, precision=precision, half=half,
                                    backend=backend, threads=threads, classes_as=classes_as, quiet=quiet or json_out)
    results = []
    with Progress(TextColumn("eval {task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console.stderr, disable=quiet or not console.interactive()) as progress:
        for d in data:
            task = progress.add_task(d.name, total=None)
            results.append(evaluate(seg, d, lambda done, total, t=task: progress.update(t, completed=done,
                                                                                           total=total)))
    if json_out:
        ran = {"device": settings.device, "precision": settings.precision, "backend": settings.backend}
        docs = [r.to_json() | ran for r in results]
        console.print_json(docs[0] if len(docs) == 1 else {"model": seg.name, "results": docs})
        return
    first = results[0]
    table = Table(title=f"{first.model} at {first.size[0]}x{first.size[1]} "
                        f"({settings.backend}, {settings.precision}, {settings.device})")
    table.add_column("class")
    for r in results:
        table.add_column(f"{Path(r.data).name} ({r.images})", justify="right")
    for name in first.per_class:
        table.add_row(name, *("-" if r.per_class[name] is None else f"{r.per_class[name] * 100:.2f}"
                              for r in results))
    table.add_row("[bold]mean[/bold]", *(f"[bold]{r.miou * 100:.2f}[/bold]" for r in results))
    console.stdout.print(table)
    for r in results:
        console.stdout.print(f"{r.data}: mIoU {r.miou * 100:.2f}  pixel accuracy {r.pixel_accuracy * 100:.2f}",
                             highlight=False)
