"""``lightseg profiles`` and ``lightseg profiles show NAME``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from .. import profiles as prof
from . import console
from .options import JsonOpt

app = typer.Typer(help="Hardware profiles (pipelines/*.toml): list them, or show one resolved for this machine.",
                  invoke_without_command=True)


@app.callback()
def list_(ctx: typer.Context, json_out: JsonOpt = False) -> None:
    """List the profiles and which one `auto` picks on this machine."""
    if ctx.invoked_subcommand is not None:
        return
    auto = prof.auto_profile()
    rows = [prof.load(n) for n in prof.list_profiles()]
    if json_out:
        console.print_json({"auto": auto, "profiles": [{"name": s.profile, "description": s.description,
                                                         "device": s.device, "precision": s.precision,
                                                         "backend": s.backend} for s in rows]})
        return
    t = Table()
    for col in ("profile", "device", "precision", "backend", "decode", "description"):
        t.add_column(col)
    for s in rows:
        name = f"{s.profile} [green](auto)[/green]" if s.profile == auto else s.profile
        t.add_row(name, s.device, s.precision, s.backend, s.decode, s.description)
    console.stdout.print(t)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Profile name, a .toml path, or auto.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """The profile's settings as they resolve on this machine, with every fallback explained."""
    asked = prof.load(prof.auto_profile() if name == "auto" else name)
    got = prof.resolve(name)
    if json_out:
        console.print_json({"requested": asked.to_json(), "resolved": got.to_json()})
        return
    t = Table(title=f"profile {got.profile}: {got.description}")
    t.add_column("setting")
    t.add_column("profile")
    t.add_column("on this machine")
    for key in ("device", "precision", "backend", "decode", "encode", "encoder_preset", "encoder_threads", "batch",
                "queue", "threads", "workers", "postprocess_workers", "overlay"):
        a, b = getattr(asked, key), getattr(got, key)
        t.add_row(key, str(a), str(b) if a == b else f"[yellow]{b}[/yellow]")
    t.add_row("sizes", ", ".join(f"{k}={v}" for k, v in asked.sizes.items()) or "model native", "")
    if asked.backends:
        t.add_row("backends", ", ".join(f"{k}={v}" for k, v in asked.backends.items()), "")
    console.stdout.print(t)
    for note in got.notes:
        console.stdout.print(f"  {note}", highlight=False, markup=False)
