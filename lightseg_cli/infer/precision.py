"""What ``--precision auto`` becomes for one model at one input size, and the rule it follows.

``lightseg quantize`` writes the int8 model and, beside it, a verdict: the model-only speed and
mIoU of int8 and of the fp32 that would run instead, measured on a labelled list. ``auto`` runs
int8 only where that verdict says it is faster and loses at most ``MAX_MIOU_LOSS``; otherwise
fp32, with one ``auto:`` note saying why (no int8 model, no mIoU measured, slower, or too lossy).
``lightseg bench --precision fp32,int8 --eval LIST`` reports the same decision from its own
measurements.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..io import atomic
from ..profiles import Settings, missing_extra
from ..zoo.pretrained import ModelCfg
from .openvino import int8_path, quantize_command

MAX_MIOU_LOSS = 0.005  # int8 may cost at most 0.5 mIoU points


def verdict_path(cfg: ModelCfg, size: tuple[int, int]) -> Path:
    return int8_path(cfg, size).with_suffix(".json")


def save_verdict(cfg: ModelCfg, size: tuple[int, int], verdict: Mapping[str, Any]) -> Path:
    """Store the measurements behind ``auto`` beside the int8 model: ``precisions`` with ``fp32`` and
    ``int8`` entries of ``model_fps``, ``miou`` and ``backend`` (``lightseg bench``'s JSON)."""
    path = verdict_path(cfg, size)
    atomic.write_text(path, json.dumps(verdict, indent=1))
    return path


def decide(fp32: Mapping[str, Any], int8: Mapping[str, Any], max_loss: float | None = None) -> tuple[str, str]:
    """``(precision, why)`` from measurements of both precisions (``model_fps``, ``miou`` or None,
    ``backend``); ``max_loss``: the mIoU int8 may lose (default ``MAX_MIOU_LOSS``)."""
    max_loss = MAX_MIOU_LOSS if max_loss is None else max_loss
    speed = f"{int8['model_fps']:.1f} FPS int8 vs {fp32['model_fps']:.1f} fp32 ({fp32['backend']})"
    if int8["model_fps"] <= fp32["model_fps"]:
        return "fp32", f"int8 is not faster: {speed}"
    if fp32.get("miou") is None or int8.get("miou") is None:
        return "fp32", f"int8 is faster ({speed}) but its mIoU was not measured (quantize with --eval LIST)"
    loss = (fp32["miou"] - int8["miou"]) * 100
    if loss > max_loss * 100:
        return "fp32", f"int8 loses {loss:.2f} mIoU points (more than {max_loss * 100:g}): {speed}"
    return "int8", f"{speed}, mIoU {-loss:+.2f} points"


def resolve(s: Settings, cfg: ModelCfg, size: tuple[int, int]) -> Settings:
    """``s`` with precision ``auto`` decided for ``cfg`` at ``size`` (other precisions unchanged)."""
    if s.precision != "auto":
        return s
    verdict = verdict_path(cfg, size)
    if why := missing_extra("openvino"):
        pick, reason = "fp32", f"int8 needs the openvino backend ({why})"
    elif not (int8_path(cfg, size).is_file() and verdict.is_file()):
        pick, reason = "fp32", f"no int8 model yet (`{quantize_command(cfg, size)} --eval LIST` makes one)"
    else:
        measured = json.loads(verdict.read_text())["precisions"]
        pick, reason = decide(measured["fp32"], measured["int8"])
    note = f"auto: precision {pick} for {cfg.name} at {size[0]}x{size[1]}: {reason}"
    return replace(s, precision=pick, backend="openvino" if pick == "int8" else s.backend, notes=(*s.notes, note))
