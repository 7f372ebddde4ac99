"""Where a frame's CPU time goes in ``lightseg run``, against what a pipelined/model-only goal allows.

Every stage the run does per frame is timed on the package's own code, one frame after another, in
CPU milliseconds (``time.process_time``: all threads of the process, so OpenVINO's and x264's own
threads count too): decode (PyAV, RGB), preprocess, inference on one thread (how the ``cpu``
profile's two single-threaded workers run it), labels, overlay, the overlay video's encode (the
profile's x264 preset on one thread, RGB -> I420 included) and the mask PNG. The model-only rate is
the network alone on every core, one inference after another (wall clock), before and after the
frames, on the run's own preprocessed first frame (channels-last). ``lightseg bench`` times one
contiguous random tensor instead; before the OpenVINO backend copied each frame into its request's
own input tensor (2026-12-01), that ran about 20% faster (lpsnet-m, one window: 34 here against 53
FPS). The per-stage
costs are taken one frame after another, so each stage starts with the caches the previous one
left, as in a run: inference on one thread here costs more than half the model-only time on two
threads.

A pipelined run can do no better than keep every core busy, so at a ratio ``r`` of the model-only
rate each frame may cost at most ``cores / (r * model FPS)`` core-seconds. What inference itself
needs of that is at least its single-threaded CPU time alone; the rest is the budget of everything
else. The script prints both and whether the goal fits. The ceiling it prints is an upper bound:
stages running at once on shared cores (and their caches) each take longer than alone, which
``lightseg bench``'s pipelined figure includes.

    python benchmarks/frame_budget.py [--model lpsnet-m] [--video ../shared/video/solidWhiteRight.mp4]
        [--frames 60] [--ratio 0.75] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import torch

from lightseg_cli.draw.overlay import Overlay, OverlayStyle
from lightseg_cli.infer.build import build_segmenter
from lightseg_cli.profiles import load
from lightseg_cli.sinks.outputs import PNG_PARAMS
from lightseg_cli.sinks.video import VideoWriter
from lightseg_cli.sources.resolve import open_source
from lightseg_cli.types import Frame, parse_size

SHARED = Path(os.environ.get("LIGHTSEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def _cpu_ms(fn: Callable[..., Any], *args: Any) -> tuple[float, Any]:
    """CPU milliseconds of ``fn(*args)`` (all threads), and its result."""
    t0 = time.process_time()
    out = fn(*args)
    return (time.process_time() - t0) * 1000, out


def _model_only(seg: Any, x: torch.Tensor, cores: int, reps: int = 30) -> list[float]:
    """Seconds per inference of the network alone on every core, on the preprocessed frame ``x``."""
    torch.set_num_threads(cores)
    seg.infer(x)
    walls = []
    for _ in range(reps):
        t0 = time.perf_counter()
        seg.infer(x)
        walls.append(time.perf_counter() - t0)
    return walls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--size", default=None, help="network input WIDTHxHEIGHT (default: the profile's)")
    ap.add_argument("--video", type=Path, default=SHARED / "video" / "solidWhiteRight.mp4")
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--ratio", type=float, default=0.75, help="pipelined / model-only goal")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    size = parse_size(a.size) if a.size else None
    cores = os.cpu_count() or 1
    profile = load("cpu")
    seg, _ = build_segmenter(a.model, profile="cpu", size=size)
    overlay = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, OverlayStyle())
    cv2.setNumThreads(1)
    stages = ("decode", "preprocess", "infer_1thread", "labels", "overlay", "encode", "mask_png")
    ms: dict[str, list[float]] = {k: [] for k in stages}
    source = open_source(str(a.video))
    frames = iter(source)
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        first = next(f for f in frames if isinstance(f, Frame))
        x0 = seg.preprocess(seg.to_device([first.image]))
        walls = _model_only(seg, x0, cores)
        frames = itertools.chain([first], frames)
        writer: VideoWriter | None = None
        for _ in range(a.frames + 1):  # the first frame warms every stage up and is not counted
            t, item = _cpu_ms(next, frames, None)
            if not isinstance(item, Frame):
                break
            img = item.image
            h, w = img.shape[:2]
            if writer is None:
                writer = VideoWriter(Path(tmp) / "overlay.mp4", (w, h), Fraction(30), preset=profile.encoder_preset,
                                     encoder_threads=1)
            torch.set_num_threads(1)
            row = {"decode": t}
            row["preprocess"], x = _cpu_ms(seg.preprocess, seg.to_device([img]))
            row["infer_1thread"], logits = _cpu_ms(seg.infer, x)
            row["labels"], labels = _cpu_ms(seg.labels, logits, (h, w), seg.exact_labels)
            labels = labels.numpy()[0]
            row["overlay"], drawn = _cpu_ms(overlay.annotate_np, img, labels)
            row["encode"], _ = _cpu_ms(writer.write, drawn)
            row["mask_png"], _ = _cpu_ms(cv2.imencode, ".png", labels, PNG_PARAMS)
            if writer.frames > 1:
                for k, v in row.items():
                    ms[k].append(v)
        if writer is not None:
            writer.close()
        source.close()
        walls += _model_only(seg, x0, cores)
    med = {k: statistics.median(v) for k, v in ms.items()}
    model_fps = 1 / statistics.median(walls)
    frame_core_ms = cores * 1000 / (a.ratio * model_fps)
    outside = sum(v for k, v in med.items() if k != "infer_1thread")
    budget = frame_core_ms - med["infer_1thread"]
    result = {
        "model": seg.name, "size": list(seg.size), "frame": [w, h], "frames": len(ms["decode"]), "cores": cores,
        "encoder_preset": profile.encoder_preset,
        "cpu_ms_per_frame": {k: round(v, 2) for k, v in med.items()},
        "model_only_fps": round(model_fps, 1),
        "model_only_core_ms": round(cores * 1000 / model_fps, 2),
        "goal_ratio": a.ratio,
        "core_ms_per_frame_at_goal": round(frame_core_ms, 2),
        "outside_network_ms": round(outside, 2),
        "budget_outside_network_ms": round(budget, 2),
        "fits": outside <= budget,
        "ceiling_ratio": round(cores * 1000 / (model_fps * (med["infer_1thread"] + outside)), 3),
    }
    if a.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{seg.name} @{seg.size[0]}x{seg.size[1]} on {w}x{h} frames, {cores} cores, {result['frames']} frames:")
    for k, v in med.items():
        print(f"  {k:14s} {v:6.2f} CPU ms")
    print(f"  model-only {model_fps:.1f} FPS = {result['model_only_core_ms']} core-ms per frame")
    print(f"  at {a.ratio} of model-only: {frame_core_ms:.1f} core-ms per frame; inference on one thread takes "
          f"{med['infer_1thread']:.1f}, leaving {budget:.1f} for the rest, which takes {outside:.1f} "
          f"({'fits' if result['fits'] else 'does not fit'})")
    print(f"  ceiling with every core busy and no contention: {result['ceiling_ratio']} of model-only")


if __name__ == "__main__":
    main()
