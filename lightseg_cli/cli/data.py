"""``lightseg data``: inspect labelled sets and split them by sequence."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..data.labelled import load_samples
from ..data.splits import sequences, split_by_sequence, write_list
from . import console
from .options import JsonOpt

app = typer.Typer(help="Labelled sets: sequences, leave-one-sequence-out splits.", no_args_is_help=True)

DataArg = Annotated[Path, typer.Argument(help="List file of 'image label' pairs, or a folder with images/ and "
                                         "labels/.")]


@app.command("sequences")
def sequences_cmd(data: DataArg, json_out: JsonOpt = False) -> None:
    """Frames per sequence (the file-name prefix before the first underscore)."""
    counts = sequences(load_samples(data))
    if json_out:
        console.print_json(counts)
        return
    for name, n in counts.items():
        console.stdout.print(f"{name}\t{n}", highlight=False)


@app.command("split")
def split_cmd(
    data: DataArg,
    holdout: Annotated[list[str], typer.Option("--holdout", help="Sequence to hold out (repeatable), e.g. 0006R0.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for train.txt and holdout.txt.")],
    json_out: JsonOpt = False,
) -> None:
    """Leave-one-sequence-out: write DIR/train.txt (other sequences) and DIR/holdout.txt (the held-out ones)."""
    rest, held = split_by_sequence(load_samples(data), holdout)
    train_list = write_list(rest, out / "train.txt")
    held_list = write_list(held, out / "holdout.txt")
    result = {"train": str(train_list), "train_images": len(rest), "holdout": str(held_list),
              "holdout_images": len(held), "holdout_sequences": sorted(set(holdout))}
    if json_out:
        console.print_json(result)
    else:
        console.stdout.print(f"{train_list}: {len(rest)} images\n{held_list}: {len(held)} images "
                             f"({', '.join(sorted(set(holdout)))})", highlight=False)
