"""The streaming loop: decode -> preprocess -> infer -> postprocess/overlay -> write.

Pipelined mode runs each stage in its own thread, joined by bounded ``Channel`` queues; threads
(not processes) because every heavy step releases the GIL (FFmpeg decode/encode, OpenCV, torch
ops) and frames then never need copying between address spaces. Sequential mode runs the very same
step functions one frame after another; ``lightseg bench`` compares the two.

Files never drop a frame and keep their order; live sources feed a ``drop-oldest`` queue of
``buffer`` frames so latency stays bounded (drops are counted). Several inference workers and
several postprocess workers may each take the next batch; batches carry their sequence number and
the writer puts them back in order. End of stream is an ``END`` marker
that every stage passes on in ``finally``; an error in any stage aborts the others (every blocking
queue call wakes up on abort and queues hand out nothing more, so each stage stops after the item in
hand), except that a failing source only ends the input: the frames it decoded are finished. Sinks
are always closed so videos are finalised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from ..draw.overlay import Overlay
from ..infer.segmenter import Segmenter
from ..sinks.outputs import Sink
from ..sources import open_source
from ..sources.base import FrameSource
from ..tuning import HeapTrim
from ..types import Frame, Result, Skipped
from . import signals
from .channel import END, Channel
from .layout import Layout, measure_layout
from .stats import RunStats, RunSummary


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily set torch's intra-op threads (0: leave as is). Several single-threaded
    inference workers beat one multi-threaded one for small networks on few cores."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def _opencv_threads(n: int) -> Iterator[None]:
    """OpenCV's thread pool (process-wide) at ``n`` for a pipelined run: its per-frame calls are
    small, and the pipeline's stages already keep the cores busy."""
    before = cv2.getNumThreads()
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@dataclass(frozen=True)
class PipelineCfg:
    batch: int = 1  # frames per inference call
    stride: int = 1  # process every Nth frame
    buffer: int = 2  # live sources: frames kept waiting for inference (older ones are dropped)
    queue: int = 4  # depth of the queues between the other stages
    max_frames: int | None = None  # stop after this many processed frames
    workers: int = 1  # inference threads working on different batches (results are re-ordered)
    threads: int = 0  # pipelined mode: threads per torch op (0 = torch's default, one per core)
    post_workers: int = 1  # postprocess (labels + overlay) threads on different batches (0: with layout "auto")
    layout: str = "fixed"  # "auto": workers, threads (and post_workers if 0) measured at start (layout.py)
    overlay_on_device: bool = True  # False: colourise/blend on the host even when inferring on a GPU


@dataclass
class _Batch:
    frames: list[Frame]
    tensor: torch.Tensor  # (N, H, W, 3) uint8 on the device
    x: torch.Tensor | None = None
    logits: torch.Tensor | None = None


class Pipeline:
    """Runs a source through a segmenter into sinks.

    Example:
        >>> pipe = Pipeline(open_source("<SOURCE_VIDEO_PATH>"), Segmenter("lpsnet-m"), overlay, sinks)
        >>> summary = pipe.run()
    """

    def __init__(
        self,
        source: FrameSource,
        segmenter: Segmenter,
        overlay: Overlay | None,
        sinks: list[Sink],
        cfg: PipelineCfg = PipelineCfg(),
    ) -> None:
        if min(cfg.batch, cfg.stride, cfg.buffer, cfg.queue, cfg.workers) < 1 or cfg.threads < 0 \
                or cfg.post_workers < (0 if cfg.layout == "auto" else 1) or cfg.layout not in ("fixed", "auto"):
            raise ValueError("batch, stride, buffer, queue, workers and post_workers must be at least 1")
        self.source = source
        self.seg = segmenter
        self.overlay = overlay
        self.sinks = sinks
        # What the sinks need (see Sink); a sink with only write and close needs neither.
        self._write_on_caller = any(getattr(s, "needs_main_thread", False) for s in sinks)
        self._stop_asks = [s.stop_requested for s in sinks if hasattr(s, "stop_requested")]
        # Nothing reads the overlay (masks only, or nothing saved): it is not drawn.
        self.draws_overlay = overlay is not None and any(getattr(s, "needs_overlay", True) for s in sinks)
        # Only an overlay video reads it: drawn on the encoder's I420 planes (half the bytes, no conversion).
        self.overlay_i420 = self.draws_overlay and all(getattr(s, "takes_i420", False) for s in sinks
                                                       if getattr(s, "needs_overlay", True))
        self.layout = self._layout(cfg)
        self.cfg = cfg = replace(cfg, workers=self.layout.workers, threads=self.layout.threads,
                                 post_workers=self.layout.post_workers)
        self.stats = RunStats(segmenter.device, cfg.workers, cfg.stride, cfg.max_frames, cfg.post_workers)
        self._heap_trim = HeapTrim()
        self.stopping = threading.Event()  # graceful: stop reading, finish what is queued
        self.abort = threading.Event()  # error or second interrupt: stop now
        self.interrupted: str | None = None
        self.error: BaseException | None = None
        self.channels: list[Channel] = []
        self._lock = threading.Lock()

    def _layout(self, cfg: PipelineCfg) -> Layout:
        """The profile's numbers, or (layout "auto") a measurement of this run's stage costs."""
        if cfg.layout != "auto":
            return Layout(cfg.workers, cfg.threads, cfg.post_workers)
        info = self.source.info
        if info.frames == 1:
            return Layout(1, 0, 1, chosen_by="one image", reason="one frame: one worker with every core")
        frame_hw = (info.height, info.width) if info.height and info.width else (self.seg.size[1], self.seg.size[0])
        return measure_layout(self.seg, self.overlay if self.draws_overlay else None, frame_hw,
                              post_workers=cfg.post_workers, frame=self._first_frame())

    def _first_frame(self) -> np.ndarray | None:
        """The first frame of a video file, read by a second decoder (the run's own source is not
        touched); None for other sources or when it cannot be read."""
        info = self.source.info
        if info.kind != "video" or not Path(info.uri).is_file():
            return None
        src = None
        try:
            src = open_source(info.uri)
            return next((f.image for f in src if isinstance(f, Frame)), None)
        except Exception:  # noqa: BLE001 - no first frame: the layout is measured on the check photo
            return None
        finally:
            if src is not None:
                src.close()

    # ---- control --------------------------------------------------------------------------
    def request_stop(self, reason: str | None = None) -> None:
        """Stop reading; frames already decoded are still processed and written.
        A second request aborts immediately (outputs are still finalised)."""
        if reason and not self.interrupted:
            self.interrupted = reason
        if self.stopping.is_set():
            self.abort.set()
        self.stopping.set()
        self.source.close()

    def _fail(self, e: BaseException, drain: bool = False) -> None:
        """Record the first error and stop now; with ``drain`` (the source failed) stop reading and
        finish the frames already decoded instead, as at the end of the stream."""
        with self._lock:
            if self.error is None:
                self.error = e
        (self.stopping if drain else self.abort).set()
        self.source.close()

    # ---- the five steps (shared by both modes) --------------------------------------------
    def _decoded(self) -> Iterator[Frame]:
        stride, limit = self.cfg.stride, self.cfg.max_frames
        produced = 0
        it = iter(self.source)
        timer = self.stats.timers["decode"]
        while not (self.stopping.is_set() or self.abort.is_set()):
            t0 = time.perf_counter()
            item = next(it, None)
            if item is None:
                return
            if isinstance(item, Skipped) or item.index % stride:
                continue
            timer.add(time.perf_counter() - t0, 1)
            yield item
            produced += 1
            if limit is not None and produced >= limit:
                return

    def _preprocess(self, frames: list[Frame]) -> _Batch:
        with self.stats.timers["preprocess"].time(len(frames)):
            t = self.seg.to_device([f.image for f in frames])
            return _Batch(frames, t, x=self.seg.preprocess(t))

    def _infer(self, b: _Batch) -> _Batch:
        with self.stats.timers["infer"].time(len(b.frames)):
            b.logits = self.seg.infer(b.x)  # type: ignore[arg-type]
            b.x = None
        return b

    def _postprocess(self, b: _Batch) -> list[Result]:
        with self.stats.timers["postprocess"].time(len(b.frames)):
            h, w = b.tensor.shape[1:3]
            labels = self.seg.labels(b.logits, (h, w), self.seg.exact_labels)
            frames = b.tensor
            if not self.cfg.overlay_on_device and labels.device.type != "cpu":
                frames, labels = frames.cpu(), labels.cpu()
            drawn = None
            if self.draws_overlay:
                if self.overlay_i420 and labels.device.type == "cpu":
                    drawn = self.overlay.annotate_i420(frames, labels, [f.i420 for f in b.frames])  # type: ignore[union-attr]
                else:
                    drawn = self.overlay.annotate(frames, labels)  # type: ignore[union-attr]
            host = labels.cpu().numpy() if labels.device.type != "cpu" else labels.numpy()
            return [Result(f, host[i], None if drawn is None else drawn[i]) for i, f in enumerate(b.frames)]

    def _write(self, results: list[Result]) -> None:
        with self.stats.timers["write"].time(len(results)):
            for r in results:
                for sink in self.sinks:
                    sink.write(r)
        self.stats.written(len(results))
        self._heap_trim()
        if not self.stopping.is_set():  # a sink's request stops the run once (a second would abort)
            for asks in self._stop_asks:
                if reason := asks():
                    self.request_stop(reason)
                    break

    # ---- pipelined mode -------------------------------------------------------------------
    def _stage(self, body: Callable[[], None], out: Channel | None, single_threaded: bool = True) -> Callable[[], None]:
        """Wrap a stage body: inference mode, error capture, END always sent downstream.
        ``single_threaded``: its torch ops take one thread (the stages themselves are the
        parallelism; only inference workers get the layout's threads per op)."""

        def run() -> None:
            try:
                if single_threaded:
                    torch.set_num_threads(1)  # this thread's own setting
                with torch.inference_mode():
                    body()
            except BaseException as e:  # noqa: BLE001 - any failure must reach the main thread
                self._fail(e)
            finally:
                if out is not None:
                    out.put(END)

        return run

    def _gather(self, inp: Channel, carry: list[Frame]) -> tuple[list[Frame], bool]:
        """Up to ``batch`` same-sized frames; returns (frames, ended)."""
        frames = carry[:]
        carry.clear()
        live = self.source.info.live
        while len(frames) < self.cfg.batch:
            item = inp.get(block=not frames or not live)
            if item is None:
                break
            if item is END:
                return frames, True
            if frames and item.image.shape != frames[0].image.shape:
                carry.append(item)
                break
            frames.append(item)
        return frames, False

    def _run_pipelined(self) -> None:
        live = self.source.info.live
        workers = self.cfg.workers
        q_frames = Channel("frames", self.cfg.buffer if live else self.cfg.queue * self.cfg.batch, self.abort,
                           "drop-oldest" if live else "wait")
        q_pre = Channel("preprocessed", max(self.cfg.queue, workers), self.abort)
        post_workers = self.cfg.post_workers
        q_logits = Channel("logits", max(self.cfg.queue, workers, post_workers), self.abort)
        q_results = Channel("results", max(self.cfg.queue, post_workers), self.abort)
        self.channels = [q_frames, q_pre, q_logits, q_results]

        def decode() -> None:
            try:
                for f in self._decoded():
                    if not q_frames.put(f):
                        return
            except Exception as e:  # noqa: BLE001 - the source failed: what it decoded is still worth finishing
                self._fail(e, drain=True)

        def preprocess() -> None:
            carry: list[Frame] = []
            ended, seq = False, 0
            while not ended or carry:
                frames, ended = self._gather(q_frames, carry)
                if frames:
                    if not q_pre.put((seq, self._preprocess(frames))):
                        return
                    seq += 1
                if ended and not carry:
                    return

        def pool(step: Callable[[Any], Any], inp: Channel, out: Channel, n: int) -> Callable[[], None]:
            """A stage body for ``n`` workers taking (seq, item) from ``inp`` and putting
            (seq, step(item)) on ``out``; the last one to finish sends END downstream."""
            remaining = [n]
            lock = threading.Lock()

            def work() -> None:
                try:
                    while (item := inp.get()) is not END:
                        seq, x = item
                        if not out.put((seq, step(x))):
                            return
                    inp.put(END)  # let the sibling workers see the end too
                finally:
                    with lock:
                        remaining[0] -= 1
                        last = remaining[0] == 0
                    if last:
                        out.put(END)

            return work

        infer = pool(self._infer, q_pre, q_logits, workers)
        postprocess = pool(self._postprocess, q_logits, q_results, post_workers)

        def write() -> None:
            # Workers may finish out of order: hold results until the next ones in sequence arrive.
            pending: dict[int, list[Result]] = {}
            expected = 0
            while (item := q_results.get()) is not END:
                pending[item[0]] = item[1]
                while expected in pending:
                    self._write(pending.pop(expected))
                    expected += 1

        threads = [
            threading.Thread(target=self._stage(decode, q_frames), name="decode", daemon=True),
            threading.Thread(target=self._stage(preprocess, q_pre), name="preprocess", daemon=True),
            *(threading.Thread(target=self._stage(infer, None, single_threaded=False), name=f"infer-{i}", daemon=True)
              for i in range(workers)),
            *(threading.Thread(target=self._stage(postprocess, None), name=f"postprocess-{i}" if post_workers > 1
                               else "postprocess", daemon=True) for i in range(post_workers)),
        ]
        # A sink that needs the main thread (a window) gets the writer here; otherwise it has its own thread.
        inline = self._write_on_caller
        if not inline:
            threads.append(threading.Thread(target=self._stage(write, None), name="write", daemon=True))
        for t in threads:
            t.start()
        if inline:
            self._stage(write, None)()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
                if self.abort.is_set():
                    t.join(5.0)
                    break

    # ---- sequential mode ------------------------------------------------------------------
    def _run_sequential(self) -> None:
        try:
            with torch.inference_mode():
                for f in self._decoded():
                    self._write(self._postprocess(self._infer(self._preprocess([f]))))
                    if self.abort.is_set():
                        return
        except BaseException as e:  # noqa: BLE001
            self._fail(e)

    # ---- entry point ----------------------------------------------------------------------
    def run(self, mode: str = "pipelined", handle_signals: bool = True) -> RunSummary:
        """Process the whole source (or until stopped); always finalises the sinks.

        With ``handle_signals`` (and when called from the main thread), SIGINT and SIGTERM stop
        reading and let the queued frames finish; a second signal aborts.
        """
        outputs: list = []
        with signals.handle_signals(self.request_stop) if handle_signals else nullcontext():
            self.stats.start()
            try:
                if mode == "sequential":
                    self._run_sequential()
                else:
                    with torch_threads(self.cfg.threads), _opencv_threads(1):
                        self._run_pipelined()
            finally:
                seconds = self.stats.seconds()
                for sink in self.sinks:
                    try:
                        outputs.extend(sink.close())
                    except BaseException as e:  # noqa: BLE001
                        self._fail(e)
        layout = self.layout if mode != "sequential" else Layout(1, 0, 1, chosen_by="sequential")
        return self.stats.summary(mode=mode, seconds=seconds, source=self.source, segmenter=self.seg,
                                  channels=self.channels, outputs=outputs, error=self.error,
                                  interrupted=self.interrupted, layout=layout.to_json())

    def snapshot(self) -> dict[str, Any]:
        """Live figures for progress displays (safe to call from another thread)."""
        return self.stats.snapshot(self.source, self.channels)
