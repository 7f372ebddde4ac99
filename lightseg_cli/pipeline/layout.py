"""The worker layout of a pipelined run: inference workers x torch threads each, and postprocess
workers. A profile fixes it (``workers = 2``, ``threads = 1``, ``postprocess_workers = 1``) or
asks for it to be measured at start (``workers = "auto"``, the ``cpu`` profile).

The measurement (:func:`measure_layout`: under a second for lpsnet-m at 480x360 on 2 cores, a few
seconds for the heaviest models; for light ones the layouts are interleaved over two rounds and
the medians taken) runs the run's own segmenter on the first frame of the run's video file (other
sources: the package's check photo, resized to the frame size; a portrait, with about three times
the class boundaries of a street scene, so its postprocess estimate is high):

* for 1, 2 and 4 inference workers (at most one per core), the inference of that many workers
  running at once with ``cores // workers`` torch threads each: their milliseconds per inference
  with all cores busy (so cache and memory contention are in it), and the inference rate of that
  layout, ``workers / ms``;
* the postprocess (labels, and the overlay when something reads it) of one frame on one thread.

The rule:

1. Inference: the layout with the most workers, unless one with fewer workers is at least 1.5
   times as fast alone. The measurement has the cores to itself, the run does not: decode,
   postprocess and encode take cores from inference at any moment, and the threads of one torch
   op then wait for each other at every op's end, while independent single-threaded workers just
   run slower. Measured on 2 cores (espnetv2-s2.0 at 1024x512, torch, 2026-12-02): one two-threaded
   worker was 12% faster alone than two single-threaded ones, yet in the pipeline its inference
   took 418 against 222 ms sequentially and the run gave 0.49 of the model-only rate, against 0.88
   with two workers. So fewer workers with more threads (lower latency, fewer frames in flight)
   are chosen only when they are far faster alone, which on a few cores means almost never.
2. Postprocess workers: enough that the postprocess stage keeps up with the frame time the work
   predicts with every core busy, ``frame_ms = (inference core-ms per frame + postprocess ms) /
   cores``: ``ceil(postprocess ms / frame_ms)``, at most one per core. With 2 cores, a second one
   when the postprocess of a frame costs more than its inference.

Decode, preprocessing and writing are one thread each whatever the layout; they are not measured
(they take the same cores from every layout). A run of one image gets one worker with every core;
a GPU gets one worker (the profiles resolve ``auto`` to 1 there). Results are cached per segmenter,
frame size and overlay, so ``lightseg bench`` measures once for all its runs.
"""

from __future__ import annotations

import math
import os
import statistics
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch

from ..draw.overlay import Overlay
from ..infer.export import check_image
from ..infer.segmenter import Segmenter

ROUNDS = 2  # interleaved rounds of the inference measurement
FEWER_WORKERS_GAIN = 1.5  # a layout with fewer workers (more threads each) must be this much faster alone


@dataclass(frozen=True)
class Layout:
    """How a pipelined run spreads its work, and how that was decided."""

    workers: int  # inference workers on different batches
    threads: int  # torch threads per op (0: torch's default, one per core)
    post_workers: int  # postprocess workers on different batches
    chosen_by: str = "profile"  # "profile" (fixed numbers), "measured", "one image", "sequential"
    measured_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "workers": self.workers,
            "threads_per_worker": self.threads or torch.get_num_threads(),
            "postprocess_workers": self.post_workers,
            "chosen_by": self.chosen_by,
            "measured_ms": {k: round(v, 3) for k, v in self.measured_ms.items()},
            "reason": self.reason,
        }


def _concurrent_ms(fn: Callable[[], object], n: int, reps: int) -> float:
    """Median milliseconds per call of ``fn`` while ``n`` threads call it at once (after one
    warm-up call each)."""
    barrier = threading.Barrier(n)
    times: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            with torch.inference_mode():
                fn()
                barrier.wait()
                for _ in range(reps):
                    t0 = time.perf_counter()
                    fn()
                    with lock:
                        times.append(time.perf_counter() - t0)
        except BaseException as e:  # noqa: BLE001 - re-raised on the caller's thread
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=work, name=f"layout-{i}", daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return statistics.median(times) * 1000


def _median_ms(fn: Callable[[], object], reps: int) -> float:
    """Median milliseconds per call of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


_cache: weakref.WeakKeyDictionary[Segmenter, dict[tuple, Layout]] = weakref.WeakKeyDictionary()
_cache_lock = threading.Lock()


def measure_layout(seg: Segmenter, overlay: Overlay | None, frame_hw: tuple[int, int],
                   cores: int | None = None, post_workers: int = 0, frame: np.ndarray | None = None) -> Layout:
    """Choose inference workers x threads and postprocess workers for ``seg`` on frames of
    ``frame_hw`` by the rule in this module's docstring. ``overlay``: the overlay the run draws
    (None: none is drawn). ``post_workers``: a fixed number (0: choose it too). ``frame``: an
    RGB frame of the run to measure on (default: the check photo at ``frame_hw``)."""
    cores = cores or os.cpu_count() or 1
    key = (tuple(frame_hw), None if overlay is None else overlay.style, cores, post_workers)
    with _cache_lock:
        hit = _cache.get(seg, {}).get(key)
    if hit is not None:
        return hit
    if frame is None or frame.shape[:2] != tuple(frame_hw):
        frame = cv2.resize(check_image(), (frame_hw[1], frame_hw[0]), interpolation=cv2.INTER_AREA)
    layout = _measure(seg, overlay, np.ascontiguousarray(frame), cores, post_workers)
    with _cache_lock:
        _cache.setdefault(seg, {})[key] = layout
    return layout


def _measure(seg: Segmenter, overlay: Overlay | None, frame: np.ndarray, cores: int, post_workers: int) -> Layout:
    h, w = frame.shape[:2]
    before = torch.get_num_threads()
    candidates = [n for n in (1, 2, 4) if n <= cores]  # inference workers; cores // n threads each
    times: dict[int, list[float]] = {n: [] for n in candidates}
    try:
        with torch.inference_mode():
            frames = seg.to_device([frame])
            x = seg.preprocess(frames)
            torch.set_num_threads(1)
            seg.infer(x)  # warm-up (a backend may compile for this thread count on first use)
            t0 = time.perf_counter()
            logits = seg.infer(x)  # a first size of the model
            reps = 3 if time.perf_counter() - t0 < 0.15 else 1  # heavy models: a few seconds in all

            def post() -> None:
                labels = seg.labels(logits, (h, w), seg.exact_labels)
                if overlay is not None:
                    overlay.annotate(frames, labels)

            post_ms = _median_ms(post, reps)
            for r in range(ROUNDS if reps > 1 else 1):  # layouts interleaved: a drifting machine disturbs them alike
                for n in candidates if r % 2 == 0 else candidates[::-1]:
                    torch.set_num_threads(cores // n)
                    times[n].append(_concurrent_ms(lambda: seg.infer(x), n, reps))
    finally:
        torch.set_num_threads(before)
    ms: dict[str, float] = {"postprocess": post_ms}
    rates: dict[int, float] = {}
    for n in candidates:
        k = cores // n
        ms[f"infer_{k}thread{'s' if k > 1 else ''}_x{n}"] = statistics.median(times[n])
        rates[n] = n / statistics.median(times[n])
    return decide(rates, post_ms, cores, post_workers, ms)


def decide(rates: dict[int, float], post_ms: float, cores: int, post_workers: int = 0,
           measured_ms: dict[str, float] | None = None) -> Layout:
    """The rule of this module's docstring. ``rates``: inference workers -> inferences per
    millisecond of that many workers running at once, ``cores // workers`` threads each;
    ``post_ms``: postprocess milliseconds per frame on one thread; ``post_workers``: a fixed
    number (0: choose it)."""
    # 1. Inference: from the most workers (one thread each) down, a layout with fewer workers and
    #    more threads wins only when it is FEWER_WORKERS_GAIN faster than the best so far.
    order = sorted(rates, reverse=True)
    workers = order[0]
    for n in order[1:]:
        if rates[n] >= rates[workers] * FEWER_WORKERS_GAIN:
            workers = n
    threads = max(1, cores // workers)
    infer_core_ms = workers * threads / rates[workers]  # core-milliseconds of inference per frame
    # 2. Postprocess workers: keep up with the frame time the work predicts with every core busy.
    frame_ms = (infer_core_ms + post_ms) / cores
    chosen_post = post_workers or max(1, min(cores, math.ceil(post_ms / frame_ms - 1e-9)))
    tried = ", ".join(f"{n}x{max(1, cores // n)}: {r * 1000:.1f}/s" for n, r in sorted(rates.items()))
    reason = (f"{workers} worker(s) x {threads} thread(s): {rates[workers] * 1000:.1f} inferences/s with all {cores} "
              f"cores "
              f"busy ({tried}); postprocess {post_ms:.1f} ms vs predicted frame time {frame_ms:.1f} ms -> "
              f"{chosen_post} postprocess worker(s)")
    return Layout(workers=workers, threads=threads, post_workers=chosen_post, chosen_by="measured",
                  measured_ms=dict(measured_ms or {}), reason=reason)
