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
from .options import DeviceOpt, JsonOpt, ModelOpt, ProfileOpt, QuietOpt, SizeOpt


def eval_(
    model: ModelOpt,
    data: Annotated[Path, typer.Option("--data", help="List file of 'image label' pairs (relative to the list's "
                                       "folder) or a folder with images/ and labels/.")],
    size: SizeOpt = None,
    device: DeviceOpt = None,
    profile: ProfileOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Mean IoU and per-class IoU of a model over a labelled set (labels outside its classes ignored)."""
    seg, _ = build_segmenter(model, profile=profile, size=size, device=device, quiet=quiet or json_out)
    with Progress(TextColumn("eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console.stderr, disable=quiet or not console.interactive()) as progress:
        task = progress.add_task("eval", total=None)
        result = evaluate(seg, data, lambda done, total: progress.update(task, completed=done, total=total))
    if json_out:
        console.print_json(result.to_json())
        return
    table = Table(title=f"{result.model} on {data} ({result.images} images at {result.size[0]}x{result.size[1]})")
    table.add_column("class")
    table.add_column("IoU", justify="right")
    for name, iou in result.per_class.items():
        table.add_row(name, "-" if iou is None else f"{iou * 100:.2f}")
    table.add_row("[bold]mean[/bold]", f"[bold]{result.miou * 100:.2f}[/bold]")
    console.stdout.print(table)
    console.stdout.print(f"mIoU {result.miou * 100:.2f}  pixel accuracy {result.pixel_accuracy * 100:.2f}",
                         highlight=False)
