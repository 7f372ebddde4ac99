"""Timing is output: per-stage timers (synchronised with the device), FPS meters and the summary."""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..types import Skipped, SourceInfo

STAGES = ("decode", "preprocess", "infer", "postprocess", "write")


class StageTimer:
    """Per-frame milliseconds of one stage. ``sync`` waits for the device before reading the clock."""

    def __init__(self, name: str, sync: Callable[[], None] | None = None, keep: int = 2000) -> None:
        self.name = name
        self.sync = sync
        self.samples: deque[float] = deque(maxlen=keep)
        self.busy = 0.0
        self.frames = 0
        self._lock = threading.Lock()

    def time(self, frames: int = 1) -> _Span:
        return _Span(self, frames)

    def add(self, seconds: float, frames: int) -> None:
        with self._lock:
            self.busy += seconds
            self.frames += frames
            per = seconds * 1000.0 / max(frames, 1)
            self.samples.extend([per] * max(frames, 1))

    def median(self) -> float | None:
        with self._lock:
            return statistics.median(self.samples) if self.samples else None

    def recent(self, n: int = 30) -> float | None:
        with self._lock:
            if not self.samples:
                return None
            tail = list(self.samples)[-n:]
        return sum(tail) / len(tail)


class _Span:
    def __init__(self, timer: StageTimer, frames: int) -> None:
        self.timer, self.frames = timer, frames

    def __enter__(self) -> _Span:
        if self.timer.sync:
            self.timer.sync()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.timer.sync:
            self.timer.sync()
        self.timer.add(time.perf_counter() - self.t0, self.frames)


class FPSMeter:
    """End-to-end frames per second: instant (last ~2 s) and average since the first frame."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self.stamps: deque[float] = deque()
        self.start: float | None = None
        self.count = 0
        self._lock = threading.Lock()

    def tick(self, n: int = 1) -> None:
        now = time.monotonic()
        with self._lock:
            if self.start is None:
                self.start = now
            self.count += n
            for _ in range(n):
                self.stamps.append(now)
            while self.stamps and now - self.stamps[0] > self.window:
                self.stamps.popleft()

    @property
    def instant(self) -> float:
        with self._lock:
            if len(self.stamps) < 2:
                return 0.0
            span = self.stamps[-1] - self.stamps[0]
            return (len(self.stamps) - 1) / span if span > 0 else 0.0

    def average(self, since: float) -> float:
        elapsed = time.monotonic() - since
        return self.count / elapsed if elapsed > 0 else 0.0


@dataclass
class RunSummary:
    """What a run did. ``to_json`` is the ``--json`` document."""

    source: SourceInfo
    model: str
    size: tuple[int, int]
    device: str
    backend: str
    mode: str  # "pipelined" or "sequential"
    frames: int = 0
    seconds: float = 0.0
    stages_ms: dict[str, float | None] = field(default_factory=dict)
    bottleneck: str | None = None
    dropped: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    missing: int = 0  # frames announced by the container that never decoded
    outages: list[str] = field(default_factory=list)
    reconnects: int = 0
    outputs: list[Path] = field(default_factory=list)
    error: str | None = None
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" / "window"

    @property
    def skipped_count(self) -> int:
        """Inputs that could not be used: bad files in a folder, or undecodable video frames."""
        return max(self.missing, len(self.skipped))

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source.to_json(),
            "model": self.model,
            "size": list(self.size),
            "device": self.device,
            "backend": self.backend,
            "mode": self.mode,
            "frames": self.frames,
            "seconds": round(self.seconds, 4),
            "fps": round(self.fps, 3),
            "stages_ms": {k: (None if v is None else round(v, 3)) for k, v in self.stages_ms.items()},
            "bottleneck": self.bottleneck,
            "dropped": self.dropped,
            "done": self.frames,
            "failed": self.skipped_count,
            "skipped": self.skipped_count,
            "failures": [{"item": s.what, "reason": s.reason} for s in self.skipped],
            "outages": self.outages,
            "reconnects": self.reconnects,
            "outputs": [str(p) for p in self.outputs],
            "error": self.error,
            "interrupted": self.interrupted,
        }
