"""Option declarations shared by several commands, and their parsers."""

from __future__ import annotations

from typing import Annotated

import typer

from ..types import parse_size

ModelOpt = Annotated[
    str,
    typer.Option("--model", "-m", help="Zoo model name (see `lightseg models`), or a .pth from `lightseg train`."),
]
SizeOpt = Annotated[
    str | None,
    typer.Option("--size", help="Network input size WIDTHxHEIGHT (default: the model's native size)."),
]
DeviceOpt = Annotated[
    str | None,
    typer.Option("--device", help="cpu, cuda, cuda:N (default: from the profile; cuda when available)."),
]
ClassesAsOpt = Annotated[
    str | None,
    typer.Option("--classes-as", help="Predict another label space through a class map, e.g. "
                 "--model espnetv2-s2.0-cityscapes --classes-as camvid (Cityscapes classes summed into CamVid's)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout instead of text.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output on stderr.")]


def size_arg(text: str | None) -> tuple[int, int] | None:
    """Parse --size, turning a bad value into a usage error that names the option."""
    if text is None:
        return None
    try:
        return parse_size(text)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--size") from None
ProfileOpt = Annotated[
    str,
    typer.Option("--profile", "-p", help="Hardware profile from pipelines/ (see `lightseg profiles`), a .toml "
                 "path, or auto."),
]
PrecisionOpt = Annotated[str | None, typer.Option("--precision", help="fp32, fp16 (CUDA), int8 (CPU: the model "
                                                  "`lightseg quantize` wrote) or auto (int8 where quantize measured "
                                                  "it faster, losing at most 0.5 mIoU points; else fp32). Default: "
                                                  "from the profile.")]
HalfOpt = Annotated[bool | None, typer.Option("--half/--fp32", help="Same as --precision fp16 / fp32.",
                                              show_default=False)]
BatchOpt = Annotated[int | None, typer.Option("--batch", min=1, help="Frames per inference call.")]
BackendOpt = Annotated[str | None, typer.Option("--backend", help="Inference backend: torch, onnxruntime, "
                                                "tensorrt, openvino (default: from the profile).")]
WorkersOpt = Annotated[int | None, typer.Option("--workers", min=1, help="Inference workers on different frames "
                                                "(CPU: several single-threaded ones can beat one multi-threaded).")]
ThreadsOpt = Annotated[int | None, typer.Option("--threads", min=0, help="Threads per torch op (0 = one per core).")]
PostWorkersOpt = Annotated[int | None, typer.Option("--post-workers", min=1, help="Postprocess (labels + overlay) "
                                                    "workers on different frames (default: from the profile; the "
                                                    "cpu profile measures the layout at start).")]


def precision_arg(precision: str | None, half: bool | None) -> str | None:
    """--precision, or its older spelling --half/--fp32 (not both)."""
    if half is None:
        return precision
    if precision is not None:
        raise typer.BadParameter("give --precision or --half/--fp32, not both", param_hint="--precision")
    return "fp16" if half else "fp32"
