"""Where a pipelined run's CPU time goes, per frame: each stage thread's own CPU time
(``time.thread_time`` around the stage's body), what the process used besides (FFmpeg's decoder
threads, x264's encoder threads, OpenVINO's), and how busy the cores were.

It runs ``lightseg bench`` (the same runs, interleaved and with the same layout) with the
pipeline's stage threads wrapped; the bench's own JSON goes to stdout unchanged and a line per
pipelined run goes to stderr:

    python benchmarks/pipeline_cpu.py [--model lpsnet-m] [--video ../shared/video/solidWhiteRight.mp4] \
        [--repeat 3] [-- more lightseg bench options]
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import threading
import time
from pathlib import Path

from lightseg_cli.cli.app import app
from lightseg_cli.pipeline import pipeline as P

SHARED = Path(os.environ.get("LIGHTSEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))

_cpu: dict[str, float] = collections.defaultdict(float)
_lock = threading.Lock()
_stage = P.Pipeline._stage
_run = P.Pipeline.run


def _timed_stage(self: P.Pipeline, body, out, single_threaded: bool = True):  # type: ignore[no-untyped-def]
    run = _stage(self, body, out, single_threaded)

    def timed() -> None:
        t0 = time.thread_time()
        try:
            run()
        finally:
            with _lock:  # infer-0 and infer-1 add up under "infer"
                _cpu[threading.current_thread().name.split("-")[0]] += time.thread_time() - t0

    return timed


def _timed_run(self: P.Pipeline, mode: str = "pipelined", handle_signals: bool = True):  # type: ignore[no-untyped-def]
    _cpu.clear()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    summary = _run(self, mode, handle_signals)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    n = max(summary.frames, 1)
    if mode == "pipelined" and summary.frames > 2:  # not the warm-up
        stages = ", ".join(f"{k} {v * 1000 / n:.2f}" for k, v in sorted(_cpu.items()))
        print(f"pipelined {n / wall:.1f} FPS: {cpu * 1000 / n:.2f} CPU ms a frame, cores busy "
              f"{cpu / wall / (os.cpu_count() or 1):.0%}; stage threads: {stages}; other threads "
              f"{(cpu - sum(_cpu.values())) * 1000 / n:.2f}", file=sys.stderr, flush=True)
    return summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--video", default=str(SHARED / "video" / "solidWhiteRight.mp4"))
    ap.add_argument("--repeat", default="3")
    args, rest = ap.parse_known_args()
    P.Pipeline._stage = _timed_stage  # type: ignore[method-assign]
    P.Pipeline.run = _timed_run  # type: ignore[method-assign]
    sys.argv = ["lightseg", "bench", args.video, "--model", args.model, "--repeat", args.repeat, "--json",
                *[a for a in rest if a != "--"]]
    app()


if __name__ == "__main__":
    main()
