"""``lightseg models``: the zoo as a table."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ..zoo import list_models
from ..zoo import weights as store
from ..zoo.complexity import complexity
from . import console
from .options import JsonOpt


def models(
    pattern: Annotated[str, typer.Argument(help="Filter names with a shell pattern, e.g. 'espnetv2*'.")] = "*",
    json_out: JsonOpt = False,
) -> None:
    """List the zoo: dataset, classes, parameters, GFLOPs at the native size, and weights present."""
    cfgs = list_models(pattern)
    stats = complexity(cfgs)
    rows = []
    for cfg in cfgs:
        st = store.status_of(cfg)
        params, gflops = stats[cfg.name]
        rows.append({
            "name": cfg.name,
            "arch": cfg.arch,
            "dataset": cfg.dataset.name,
            "classes": cfg.dataset.scored,
            "outputs": cfg.num_classes,
            "input_size": list(cfg.input_size),
            "params_m": round(params / 1e6, 3),
            "gflops": round(gflops, 2),
            "weights": cfg.weights,
            "weights_present": bool(st and st.found),
            "weights_verified": bool(st and st.verified),
            "weights_path": str(st.found) if st and st.found else None,
            "license": st.file.license if st else None,
            "description": cfg.description,
        })
    if json_out:
        console.print_json(rows)
        return
    table = Table(title=None, show_lines=False)
    for col, just in (("model", "left"), ("dataset", "left"), ("classes", "right"), ("input", "right"),
                      ("params (M)", "right"), ("GFLOPs", "right"), ("weights", "left")):
        table.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        w = "[green]ok[/green]" if r["weights_verified"] else ("[red]corrupt[/red]" if r["weights_present"]
                                                               else "[yellow]missing[/yellow]")
        if r["license"] is None:  # not in the manifest: this release has no weights for it
            w = "[dim]not released[/dim]"
        table.add_row(r["name"], r["dataset"], str(r["classes"]), "x".join(map(str, r["input_size"])),
                      f"{r['params_m']:.2f}", f"{r['gflops']:.2f}", w)
    console.stdout.print(table)
    console.log("GFLOPs are multiply-accumulates at the input size shown (the papers' convention). "
                "Missing weights: `lightseg weights pull NAME` or `lightseg weights import DIR`.")
