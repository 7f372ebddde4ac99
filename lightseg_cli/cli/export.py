"""``lightseg export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..infer.export import export as do_export
from . import console
from .options import JsonOpt, ModelOpt, SizeOpt, size_arg


def export(
    model: ModelOpt,
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx or tensorrt.")] = "onnx",
    size: SizeOpt = None,
    half: Annotated[bool, typer.Option("--half", help="float16 weights (ONNX) / fp16 engine (TensorRT).")] = False,
    dynamic: Annotated[bool, typer.Option("--dynamic", help="Allow any input height/width.")] = False,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Output file.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Export a model to ONNX (checked with ONNX Runtime against torch on a real image) or TensorRT."""
    res = do_export(model, fmt, size_arg(size), out, half=half, dynamic=dynamic)
    if json_out:
        console.print_json(res.to_json())
    else:
        console.stdout.print(f"{res.path}  ({res.format}, {res.size[0]}x{res.size[1]}"
                             f"{', fp16' if res.half else ''}; ONNX Runtime vs torch labels: "
                             f"{res.agreement * 100:.3f}% equal)", highlight=False)
