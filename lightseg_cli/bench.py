"""``lightseg bench``: the pipelined loop vs a strictly sequential loop vs the model alone; or,
with a labelled list, precisions side by side (``compare_precisions``).

All three run in one process on the same frames, with the same code for each step (the pipeline's
own step functions). Both loops write a real overlay video to a temporary folder, so encoding is
counted. With ``repeat > 1`` the modes are interleaved and the medians are reported, so a noisy
machine disturbs both sides alike. The model alone is timed right before and right after each
pipelined run (for at least ``MODEL_SECONDS`` each) and that run is compared with the mean of the
two: on a shared 2-core machine the model-only rate drifts by a fifth within seconds (lpsnet-m at
480x360: 48 to 65 FPS in consecutive 0.2 s samples), so a single short sample beside a run of
several seconds made the ratio swing from 0.67 to 0.87 between repeats. The pipelined runs'
worker layout (measured once, before the timed runs, when the profile says ``workers = "auto"``)
is reported with the figures.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .evaluate import evaluate
from .infer.precision import decide
from .infer.segmenter import Segmenter
from .pipeline.job import RunOptions, prepare
from .pipeline.stats import RunSummary
from .profiles import Settings


@dataclass(frozen=True)
class BenchResult:
    model: str
    size: tuple[int, int]
    frames: int
    backend: str
    device: str
    pipelined_fps: float
    sequential_fps: float
    model_fps: float
    stages_ms: dict[str, float | None]  # sequential loop: each stage alone
    pipelined_stages_ms: dict[str, float | None]
    runs: list[dict[str, Any]]
    # Medians of per-repeat ratios: each pipelined run against the sequential run before it and
    # the mean of the model-only rates measured just before and just after it.
    pipelined_vs_sequential: float
    pipelined_vs_model: float
    layout: dict[str, Any]  # the pipelined runs': workers x threads, postprocess workers, how chosen

    def to_json(self) -> dict[str, Any]:
        r = lambda v: None if v is None else round(v, 3)  # noqa: E731
        return {
            "model": self.model,
            "size": list(self.size),
            "frames": self.frames,
            "pipelined_fps": r(self.pipelined_fps),
            "sequential_fps": r(self.sequential_fps),
            "model_fps": r(self.model_fps),
            "pipelined_vs_sequential": r(self.pipelined_vs_sequential),
            "pipelined_vs_model": r(self.pipelined_vs_model),
            "stages_ms": {k: r(v) for k, v in self.stages_ms.items()},
            "pipelined_stages_ms": {k: r(v) for k, v in self.pipelined_stages_ms.items()},
            "backend": self.backend,
            "device": self.device,
            "layout": self.layout,
            "runs": self.runs,
        }


MODEL_SECONDS = 1.0  # the shortest model-only measurement in a bench run


def model_fps(seg: Segmenter, frame_hw: tuple[int, int], iterations: int = 10, batch: int = 1,
              min_seconds: float = 0.0) -> float:
    """Frames per second of the network alone on a preprocessed batch: the median over
    ``iterations`` calls, or over as many as fill ``min_seconds`` (at most 500), after two warm-up
    calls."""
    w, h = seg.size
    x = torch.randn(batch, 3, h, w, device=seg.device, dtype=seg.dtype)
    sync = (lambda: torch.cuda.synchronize(seg.device)) if seg.device.type == "cuda" else (lambda: None)
    times: list[float] = []
    with torch.inference_mode():
        for i in range(2 + 500):
            sync()
            t0 = time.perf_counter()
            seg.infer(x)
            sync()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - t0)
                if len(times) >= iterations and sum(times) >= min_seconds:
                    break
    return batch / statistics.median(times)


def bench(
    source: str,
    seg: Segmenter,
    frames: int = 100,
    repeat: int = 1,
    opts: RunOptions | None = None,
    log: Callable[[str], None] | None = None,
) -> BenchResult:
    """Measure one source with one segmenter in the three modes."""
    log = log or (lambda m: None)
    opts = opts or RunOptions()
    runs: list[RunSummary] = []
    with tempfile.TemporaryDirectory(prefix="lightseg-bench-") as tmp:
        base = replace(opts, exist_ok=True, save=True, show=False,
                       pipeline=replace(opts.pipeline, max_frames=frames))
        # Warm up allocator and kernels outside the timed runs.
        warm = prepare(source, seg, replace(base, out=Path(tmp) / "warmup",
                                            pipeline=replace(base.pipeline, max_frames=2)))
        info = warm.run(mode="sequential", handle_signals=False).source
        frame_hw = (info.height or seg.size[1], info.width or seg.size[0])

        def model_only(i: int, when: str) -> float:
            rate = model_fps(seg, frame_hw, batch=opts.pipeline.batch, min_seconds=MODEL_SECONDS)
            log(f"run {i + 1}/{repeat} model only, {when} the pipelined run: {rate:.2f} FPS")
            return rate

        model_rates: list[float] = []  # before and after each pipelined run
        for i in range(repeat):
            for mode in ("sequential", "pipelined"):
                if mode == "pipelined":
                    model_rates.append(model_only(i, "before"))
                pipe = prepare(source, seg, replace(base, out=Path(tmp) / f"{mode}-{i}"))
                s = pipe.run(mode=mode, handle_signals=False)
                if s.error:
                    raise RuntimeError(s.error)
                runs.append(s)
                log(f"run {i + 1}/{repeat} {mode}: {s.frames} frames, {s.fps:.2f} FPS")
            model_rates.append(model_only(i, "after"))
    seq = [s for s in runs if s.mode == "sequential"]
    pip = [s for s in runs if s.mode == "pipelined"]

    def med_stages(rs: list[RunSummary]) -> dict[str, float | None]:
        keys = rs[0].stages_ms.keys()
        return {k: statistics.median([r.stages_ms[k] for r in rs if r.stages_ms[k] is not None] or [0.0])
                for k in keys}

    return BenchResult(
        model=seg.name,
        size=seg.size,
        frames=pip[0].frames,
        backend=seg.backend.name,
        device=str(seg.device),
        pipelined_fps=statistics.median(s.fps for s in pip),
        sequential_fps=statistics.median(s.fps for s in seq),
        model_fps=statistics.median(model_rates),
        stages_ms=med_stages(seq),
        pipelined_stages_ms=med_stages(pip),
        runs=[{"mode": s.mode, "fps": round(s.fps, 3), "frames": s.frames, "seconds": round(s.seconds, 3)}
              for s in runs] + [{"mode": "model", "fps": round(m, 3), "pipelined_run": i // 2 + 1,
                                "when": ("before", "after")[i % 2]} for i, m in enumerate(model_rates)],
        pipelined_vs_sequential=statistics.median(p.fps / q.fps for p, q in zip(pip, seq) if q.fps),
        pipelined_vs_model=statistics.median(2 * p.fps / (before + after) for p, before, after
                                             in zip(pip, model_rates[::2], model_rates[1::2])),
        layout=pip[0].layout,
    )


@dataclass(frozen=True)
class PrecisionResult:
    """One precision of :func:`compare_precisions`: what ran, how fast, what it scored."""

    asked: str
    precision: str  # what ran (a CPU runs fp16 as fp32; auto becomes fp32 or int8)
    backend: str
    model_fps: float  # median of the rounds
    fps_per_round: list[float]
    miou: float | None  # None: no labelled list
    label_agreement: float | None  # fraction of pixels labelled as fp32 labels them (None: fp32 not compared)
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"precision": self.precision, "backend": self.backend, "model_fps": round(self.model_fps, 3),
                "fps_per_round": [round(v, 3) for v in self.fps_per_round], "miou": self.miou,
                "label_agreement": self.label_agreement, "notes": list(self.notes)}


@dataclass(frozen=True)
class PrecisionReport:
    model: str
    size: tuple[int, int]
    data: str | None
    images: int
    rounds: int
    results: dict[str, PrecisionResult]  # by the precision asked

    def auto(self) -> tuple[str, str] | None:
        """What ``--precision auto`` makes of these figures (None: fp32 and int8 were not both measured)."""
        fp32, int8 = self.results.get("fp32"), self.results.get("int8")
        return decide(fp32.to_json(), int8.to_json()) if fp32 and int8 else None

    def to_json(self) -> dict[str, Any]:
        auto = self.auto()
        return {"model": self.model, "size": list(self.size), "data": self.data, "images": self.images,
                "rounds": self.rounds, "precisions": {k: r.to_json() for k, r in self.results.items()},
                "auto": None if auto is None else {"precision": auto[0], "reason": auto[1]}}


def compare_precisions(
    make: Callable[[str], tuple[Segmenter, Settings]],
    precisions: Sequence[str],
    data: str | Path | None,
    rounds: int = 3,
    log: Callable[[str], None] | None = None,
) -> PrecisionReport:
    """Model-only FPS (``rounds`` interleaved rounds, medians), mIoU on the labelled ``data`` and the
    labels' agreement with fp32's, for each precision; ``make(precision)`` builds the segmenter as a
    run would (profile, backend and size resolved the same way)."""
    log = log or (lambda m: None)
    built = {p: make(p) for p in dict.fromkeys(precisions)}
    order = list(built)
    rates: dict[str, list[float]] = {p: [] for p in order}
    for r in range(rounds):
        for p in order if r % 2 == 0 else order[::-1]:
            seg = built[p][0]
            rates[p].append(model_fps(seg, (seg.size[1], seg.size[0])))
            log(f"round {r + 1}/{rounds} {p}: {rates[p][-1]:.2f} FPS (model only)")
    labels: dict[str, list[np.ndarray]] = {p: [] for p in order}
    scores = {p: evaluate(built[p][0], data, on_prediction=labels[p].append) if data else None for p in order}
    ref = labels.get("fp32")

    def agreement(p: str) -> float | None:
        if not ref:
            return None
        return sum(int((a == b).sum()) for a, b in zip(labels[p], ref)) / sum(a.size for a in ref)

    results = {}
    for p in order:
        seg, settings = built[p]
        score = scores[p]
        results[p] = PrecisionResult(p, seg.precision, seg.backend.name, statistics.median(rates[p]), rates[p],
                                     None if score is None else score.miou, agreement(p), settings.notes)
    first = next(iter(scores.values()))
    seg = built[order[0]][0]
    return PrecisionReport(seg.name, seg.size, None if data is None else str(data),
                           0 if first is None else first.images, rounds, results)
