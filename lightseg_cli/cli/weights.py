"""``lightseg weights list|pull|import|verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from ..errors import EXIT_FAILED, UsageError, WeightsError
from ..zoo import get_cfg, list_models
from ..zoo import weights as store
from . import console
from .options import JsonOpt

app = typer.Typer(help="Find, download, import and verify weight files.", no_args_is_help=True)


def _rows() -> list[dict]:
    users: dict[str, list[str]] = {}
    for cfg in list_models():
        users.setdefault(cfg.weights, []).append(cfg.name)
    rows = []
    for wf in store.manifest().values():
        st = store.status(wf)
        rows.append({
            "file": wf.path,
            "models": users.get(wf.path, []),
            "present": st.found is not None,
            "verified": st.verified,
            "path": str(st.found) if st.found else None,
            "sha256": wf.sha256,
            "url": wf.url,
            "license": wf.license,
        })
    return rows


@app.command("list")
def list_(json_out: JsonOpt = False) -> None:
    """Every known weight file: where it was found (lookup order: $LIGHTSEG_WEIGHTS, cache,
    package) and whether its sha256 matches."""
    rows = _rows()
    if json_out:
        console.print_json({"roots": [str(p) for _, p in store.roots()], "files": rows})
        return
    table = Table()
    for col in ("file", "models", "status", "found at"):
        table.add_column(col)
    for r in rows:
        status = "[green]verified[/green]" if r["verified"] else ("[red]bad sha256[/red]" if r["present"]
                                                                  else "[yellow]missing[/yellow]")
        table.add_row(r["file"], ", ".join(r["models"]), status, r["path"] or "-")
    console.stdout.print(table)
    console.log("lookup order: " + ", ".join(f"{label} ({p})" for label, p in store.roots()))


@app.command()
def verify(json_out: JsonOpt = False) -> None:
    """Check the sha256 of every weight file found; exit 3 if any is corrupt."""
    rows = [r for r in _rows() if r["present"]]
    bad = [r for r in rows if not r["verified"]]
    if json_out:
        console.print_json({"checked": len(rows), "bad": [r["path"] for r in bad]})
    else:
        for r in rows:
            console.stdout.print(f"{'ok ' if r['verified'] else 'BAD'} {r['path']}", highlight=False, markup=False)
        console.log(f"{len(rows)} files checked, {len(bad)} bad")
    if bad:
        raise typer.Exit(EXIT_FAILED)


@app.command()
def pull(
    names: Annotated[list[str] | None, typer.Argument(help="Model names whose weights to download.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Download every downloadable weight file.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Download weights from their upstream URLs into the cache, verifying sha256."""
    if not names and not all_:
        raise UsageError("give model names or --all")
    if all_:
        files = [wf for wf in store.manifest().values() if wf.url]
    else:
        files = []
        for n in names or []:
            wf = store.manifest_entry(get_cfg(n).weights)
            if wf.url is None:
                console.log(f"{n}: weights ship with lightseg, nothing to download")
            elif wf not in files:
                files.append(wf)
    failed = 0
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console.stderr, disable=quiet or not console.interactive()) as progress:
        for wf in files:
            st = store.status(wf)
            if st.verified and st.found and st.found.is_relative_to(store.cache_dir()):
                console.log(f"{wf.path}: already in the cache") if not quiet else None
                continue
            task = progress.add_task(wf.path, total=None)
            try:
                path = store.pull(wf, lambda done, total, t=task: progress.update(t, completed=done, total=total))
            except WeightsError as e:
                console.error(str(e))
                failed += 1
                continue
            if not quiet:
                console.log(f"{wf.path}: verified -> {path}")
    if failed:
        raise typer.Exit(EXIT_FAILED)


@app.command("import")
def import_(
    folder: Annotated[Path, typer.Argument(help="Folder holding weight files (any layout).")],
    json_out: JsonOpt = False,
) -> None:
    """Copy weight files from a local folder into the cache, verifying each sha256."""
    rows = store.import_dir(folder)
    bad = [r for r in rows if r[1].startswith("skipped")]
    if json_out:
        console.print_json([{"file": wf.path, "result": msg} for wf, msg in rows])
    else:
        for wf, msg in rows:
            console.stdout.print(f"{wf.path}: {msg}", highlight=False, markup=False)
        if not rows:
            console.warn(f"{folder}: no known weight files found")
    if bad or not rows:
        raise typer.Exit(EXIT_FAILED)
