"""Timing is output: per-stage timers, FPS meters, and the run's live snapshot and final summary.

Stage timers read the host clock, except the device stages (preprocess, infer, postprocess) on
CUDA: there a device-wide ``synchronize`` around every step would stall the pipelined loop and
charge each stage the kernels of the others, so those stages record a start and an end CUDA event
on their current stream and read the elapsed time later, once the events have completed (when the
stage's next item arrives, or when a snapshot or the summary is made). Which timer a stage gets is
decided by the device type alone (:func:`stage_timers`), so the event path runs on a CPU too, with
stand-in events.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from ..errors import LightsegError
from ..infer.segmenter import Segmenter
from ..sources.base import FrameSource
from ..types import Skipped, SourceInfo
from .channel import Channel

STAGES = ("decode", "preprocess", "infer", "postprocess", "write")
DEVICE_STAGES = ("preprocess", "infer", "postprocess")  # the stages that enqueue device work


class StageTimer:
    """Per-frame milliseconds of one stage, on the host clock."""

    def __init__(self, name: str, keep: int = 2000) -> None:
        self.name = name
        self.samples: deque[float] = deque(maxlen=keep)
        self.busy = 0.0
        self.frames = 0
        self._lock = threading.Lock()

    @contextmanager
    def time(self, frames: int = 1) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.add(time.perf_counter() - t0, frames)

    def add(self, seconds: float, frames: int) -> None:
        with self._lock:
            self.busy += seconds
            self.frames += frames
            per = seconds * 1000.0 / max(frames, 1)
            self.samples.extend([per] * max(frames, 1))

    def median(self) -> float | None:
        """Median milliseconds per frame over the run (the summary's figure)."""
        with self._lock:
            return statistics.median(self.samples) if self.samples else None

    def recent(self, n: int = 30) -> float | None:
        """Mean milliseconds per frame over the last ``n`` frames (the live figure)."""
        with self._lock:
            if not self.samples:
                return None
            tail = list(self.samples)[-n:]
        return sum(tail) / len(tail)


class Event(Protocol):
    """What :class:`EventTimer` needs of an event (``torch.cuda.Event(enable_timing=True)``)."""

    def record(self, stream: Any = None) -> None: ...

    def query(self) -> bool: ...

    def synchronize(self) -> None: ...

    def elapsed_time(self, end: Any) -> float: ...


class EventTimer(StageTimer):
    """Per-frame milliseconds of a device stage, measured on the device's timeline.

    ``time()`` records a start and an end event on ``stream()`` (the calling thread's current
    stream) around the stage's work and returns without waiting; the span is read once its end
    event has completed: when the stage times its next item, or when ``recent``/``median`` are
    asked. No stage thread ever waits for the device; only ``median`` (the summary, after the run)
    waits for the events still pending, each on its own. More than ``pending`` unread spans (a
    device far behind the host) are waited for oldest first, so memory stays bounded.
    """

    def __init__(self, name: str, new_event: Callable[[], Event], stream: Callable[[], Any],
                 keep: int = 2000, pending: int = 256) -> None:
        super().__init__(name, keep)
        self.new_event, self.stream = new_event, stream
        self.max_pending = pending
        self._pending: deque[tuple[Event, Event, int]] = deque()
        self._pending_lock = threading.Lock()

    @contextmanager
    def time(self, frames: int = 1) -> Iterator[None]:
        self.resolve()
        start, end = self.new_event(), self.new_event()
        start.record(self.stream())
        yield
        end.record(self.stream())
        with self._pending_lock:
            self._pending.append((start, end, frames))
            overfull = len(self._pending) > self.max_pending
        if overfull:
            self.resolve(wait_oldest=True)

    def resolve(self, wait: bool = False, wait_oldest: bool = False) -> None:
        """Turn completed spans into samples, in order; ``wait``: all of them, waiting for each
        one's end event; ``wait_oldest``: at least the oldest."""
        while True:
            with self._pending_lock:
                if not self._pending:
                    return
                start, end, frames = self._pending[0]
                if not (wait or wait_oldest) and not end.query():
                    return
                self._pending.popleft()
            wait_oldest = False
            try:
                end.synchronize()  # this event only; returns at once when it has completed
                ms = start.elapsed_time(end)
            except RuntimeError:  # a failed device: the run reports the error, the span is lost
                continue
            self.add(ms / 1000.0, frames)

    def median(self) -> float | None:
        self.resolve(wait=True)
        return super().median()

    def recent(self, n: int = 30) -> float | None:
        self.resolve()
        return super().recent(n)


def stage_timers(device: torch.device, new_event: Callable[[], Event] | None = None,
                 stream: Callable[[], Any] | None = None) -> dict[str, StageTimer]:
    """One timer per stage: host clocks, and device events for the device stages on CUDA.

    The choice depends on ``device.type`` only; ``new_event`` and ``stream`` default to
    ``torch.cuda.Event(enable_timing=True)`` and the calling thread's current stream on ``device``.
    """
    if device.type != "cuda":
        return {s: StageTimer(s) for s in STAGES}
    new_event = new_event or (lambda: torch.cuda.Event(enable_timing=True))
    stream = stream or (lambda: torch.cuda.current_stream(device))
    return {s: EventTimer(s, new_event, stream) if s in DEVICE_STAGES else StageTimer(s) for s in STAGES}


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
    precision: str = "fp32"
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
    layout: dict[str, Any] = field(default_factory=dict)  # workers x threads, postprocess workers, how chosen

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
            "precision": self.precision,
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
            "layout": self.layout,
        }


class RunStats:
    """The figures of one run while it goes: stage timers, end-to-end FPS, start and last-frame
    times; read live by :meth:`snapshot` (from any thread) and at the end by :meth:`summary`."""

    def __init__(self, device: torch.device, workers: int = 1, stride: int = 1, max_frames: int | None = None,
                 post_workers: int = 1) -> None:
        self.timers = stage_timers(device)
        self.fps = FPSMeter()
        self.workers, self.stride, self.max_frames = workers, stride, max_frames
        self.post_workers = post_workers
        self.t_start = self.t_last = time.monotonic()

    def start(self) -> None:
        self.t_start = self.t_last = time.monotonic()

    def written(self, frames: int) -> None:
        """``frames`` results went through every sink."""
        self.fps.tick(frames)
        self.t_last = time.monotonic()

    def seconds(self) -> float:
        """From the start to the last written frame (to now when none was written)."""
        return (self.t_last if self.fps.count else time.monotonic()) - self.t_start

    def bottleneck(self, per_stage: dict[str, float | None], mode: str) -> str | None:
        """The stage with the most time per frame, counting parallel inference and postprocess workers."""
        par = {"infer": self.workers, "postprocess": self.post_workers} if mode == "pipelined" else {}
        timed = {s: v / par.get(s, 1) for s, v in per_stage.items() if v is not None}
        return max(timed, key=timed.__getitem__) if timed else None

    def snapshot(self, source: FrameSource, channels: list[Channel]) -> dict[str, Any]:
        """Live figures for progress displays."""
        info = source.info
        total = None
        if info.frames:
            total = -(-info.frames // self.stride)
        if self.max_frames is not None:
            total = min(total, self.max_frames) if total else self.max_frames
        recent = {s: t.recent() for s, t in self.timers.items()}
        avg = self.fps.average(self.fps.start) if self.fps.start is not None else 0.0
        done = self.fps.count
        return {
            "frames": done,
            "total": total,
            "fps": self.fps.instant,
            "fps_avg": avg,
            "stages_ms": recent,
            "queues": {c.name: c.fill for c in channels},
            "dropped": sum(c.dropped for c in channels),
            "skipped": len(source.report.skipped),
            "bottleneck": self.bottleneck(recent, "pipelined"),
            "workers": self.workers,
            "post_workers": self.post_workers,
            "eta": (total - done) / avg if total and avg > 0 else None,
            "elapsed": time.monotonic() - self.t_start,
        }

    def summary(self, *, mode: str, seconds: float, source: FrameSource, segmenter: Segmenter,
                channels: list[Channel], outputs: list[Path], error: BaseException | None,
                interrupted: str | None, layout: dict[str, Any] | None = None) -> RunSummary:
        stages = {s: t.median() for s, t in self.timers.items()}
        report = source.report
        return RunSummary(
            source=source.info,
            model=segmenter.name,
            size=segmenter.size,
            device=str(segmenter.device),
            backend=segmenter.backend.name,
            precision=segmenter.precision,
            mode=mode,
            frames=self.fps.count,
            seconds=seconds,
            stages_ms=stages,
            bottleneck=self.bottleneck(stages, mode),
            dropped=sum(c.dropped for c in channels),
            skipped=list(report.skipped),
            missing=report.missing,
            outages=list(report.outages),
            reconnects=report.reconnects,
            outputs=outputs,
            error=describe(error),
            interrupted=interrupted,
            layout=layout or {},
        )


def describe(err: BaseException | None) -> str | None:
    """One line for the summary: lightseg's own errors as they are, others with their type."""
    if err is None:
        return None
    return str(err) if isinstance(err, LightsegError) else f"{type(err).__name__}: {err}"
