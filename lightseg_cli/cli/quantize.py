"""``lightseg quantize``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..bench import compare_precisions
from ..infer.precision import MAX_MIOU_LOSS, save_verdict
from ..infer.quantize import quantize as do_quantize
from . import console
from .bench import print_precisions
from .engine import build_segmenter
from .options import JsonOpt, ModelOpt, ProfileOpt, QuietOpt, SizeOpt, size_arg


def quantize(
    model: ModelOpt,
    calib: Annotated[Path, typer.Option("--calib", help="Calibration images: a folder of images, a folder with "
                                        "images/ and labels/, or a list file whose lines start with an image path "
                                        "(relative to the list, like eval's lists).")],
    size: SizeOpt = None,
    backend: Annotated[str, typer.Option("--backend", help="Backend the int8 model is for: openvino.")] = "openvino",
    images: Annotated[int, typer.Option("--images", min=1, help="Calibration images to use, spread evenly over "
                                        "the set.")] = 32,
    eval_list: Annotated[Path | None, typer.Option("--eval", help="Labelled list (or images/labels folder) to "
                                                   "measure int8 against fp32 on: model-only FPS and mIoU, what "
                                                   "--precision auto decides by. Without it auto keeps fp32.")] = None,
    repeat: Annotated[int, typer.Option("--repeat", min=1, help="Interleaved speed rounds; medians are "
                                        "kept.")] = 3,
    profile: ProfileOpt = "auto",
    json_out: JsonOpt = False,
    quiet: QuietOpt = False,
) -> None:
    """Post-training int8 of a model (NNCF, calibrated on real images through the model's own
    preprocessing) for `--precision int8`, and the measurements `--precision auto` decides by."""
    log = (lambda m: None) if quiet or json_out else console.log
    res = do_quantize(model, calib, size_arg(size), images=images, backend=backend)
    log(f"int8 model: {res.path} ({len(res.images)} calibration images, {res.seconds:.1f} s)")
    w, h = res.size

    def make(precision: str):  # type: ignore[no-untyped-def]
        # The fp32 side runs as the profile runs this model, so int8 competes with what would run instead.
        return build_segmenter(model, profile=profile, size=f"{w}x{h}", precision=precision, quiet=True)

    report = compare_precisions(make, ["fp32", "int8"], eval_list, rounds=repeat, log=log)
    verdict = save_verdict(res.cfg, res.size, report.to_json())
    if json_out:
        console.print_json({"quantize": res.to_json(), "verdict": report.to_json(), "verdict_path": str(verdict)})
        return
    print_precisions(report, json_out=False)
    console.stdout.print(f"--precision auto (at most {MAX_MIOU_LOSS * 100:g} mIoU points lost) reads {verdict}",
                         highlight=False, markup=False)
