"""What one worker of a distributed run does: build its segmenter once, then label units of work
with the local pipeline (``pipeline.job.assemble``) into the run's store, and report each unit.

A unit is a batch of images (their bytes read elsewhere, e.g. by Ray Data) or one video. Images
get the output names the driver chose for the whole run (so a file's name never depends on which
batch it landed in); their per-frame statistics come back in the report, for the driver to write
the one ``<stem>_stats.jsonl`` a local run writes. Each worker runs one inference worker with
``threads`` torch threads: the cluster, not the pipeline, spreads the work over cores. A batch of
images goes through the sequential loop (decode, infer, postprocess, write, one image at a time);
a video, long enough to fill a pipeline, through the pipelined one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import LightsegError
from ..infer.segmenter import Segmenter
from ..io.images import decode_rgb
from ..pipeline.job import RunOptions, assemble, class_ids, open_input, with_profile
from ..pipeline.pipeline import torch_threads
from ..pipeline.stats import RunSummary
from ..profiles import Settings
from ..sinks.outputs import Sink, stats_row
from ..sources.base import FrameSource
from ..sources.images import ImageSource
from ..types import Result, Skipped
from .store import Store

SegmenterFactory = Callable[[], tuple[Segmenter, Settings]]


@dataclass(frozen=True)
class WorkSpec:
    """How every worker labels: sent to each worker, so everything in it must pickle."""

    model: str  # the model as the user named it (titles, and a summary when nothing ran)
    build: SegmenterFactory  # called once per worker, on the worker: weights are resolved there
    options: RunOptions  # the user's choices; the profile's are filled in on each worker
    preset: str | None = None  # x264 preset given by the user (None: the profile's)
    stride: int = 1
    max_frames: int | None = None  # per video (image lists are cut by the driver)
    threads: int = 1  # torch threads of each worker


class WorkerError(LightsegError):
    """A worker could not start: the message and exit code of the error it met."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def __reduce__(self) -> tuple:
        return WorkerError, (str(self), self.exit_code)


@dataclass
class Report:
    """What a unit did, sent back to the driver."""

    files: int = 0  # input files the unit covered (labelled, skipped, or left when it stopped on an error)
    done: list[str] = field(default_factory=list)  # the input paths labelled
    skipped: list[Skipped] = field(default_factory=list)  # inputs that could not be read (whole videos included)
    rows: list[dict] = field(default_factory=list)  # images with --stats: their statistics lines
    outputs: list[str] = field(default_factory=list)  # files and folders written, relative to the store
    summary: RunSummary | None = None  # the unit's pipeline run
    started: float = 0.0  # wall clock (time.time) around the pipeline run
    ended: float = 0.0
    fatal: WorkerError | None = None


class _Written(Sink):
    """Records the names of the frames that went through every sink before it, and (``classes``
    given) their statistics lines."""

    needs_overlay = False

    def __init__(self, classes: tuple[str, ...] | None) -> None:
        self.classes = classes
        self.names: list[str] = []
        self.rows: list[dict] = []

    def write(self, result: Result) -> None:
        self.names.append(result.frame.name)
        if self.classes:
            self.rows.append(stats_row(result, self.classes))

    def close(self) -> list[Path]:
        return []


class Worker:
    """One segmenter and the options to run it with; :meth:`images` and :meth:`video` label units."""

    def __init__(self, spec: WorkSpec, store: Store | None) -> None:
        """``store``: where outputs go (None: nothing is saved)."""
        self.store = store
        self.fatal: WorkerError | None = None
        try:
            self.seg, settings = spec.build()
            class_ids(self.seg.cfg, spec.options.classes)  # a bad --classes fails here, once
        except LightsegError as e:  # reported with every unit: the driver stops on the first
            self.fatal = WorkerError(str(e), e.exit_code)
            return
        w, h = self.seg.size
        self.seg([np.zeros((h, w, 3), np.uint8)])  # the first inference sets up the backend: not in a unit's time
        opts = with_profile(spec.options, settings, spec.preset, stride=spec.stride, max_frames=spec.max_frames)
        one = replace(opts.pipeline, workers=1, threads=spec.threads, post_workers=1, layout="fixed")
        self.video_opts = replace(opts, pipeline=one, show=False)
        self.image_opts = replace(self.video_opts, stats=False, pipeline=replace(one, stride=1, max_frames=None))
        self.stats = opts.stats and opts.save
        self.threads = spec.threads

    def images(self, items: Sequence[tuple[str, str, bytes]]) -> Report:
        """Label ``(path, output name, file bytes)`` items, as one batch of a local run of their folder."""
        if self.fatal:
            return Report(files=len(items), fatal=self.fatal)
        blobs = {p: data for p, _, data in items}
        source = ImageSource([Path(p) for p, _, _ in items], "batch", "batch", names=[n for _, n, _ in items],
                             read=lambda p: decode_rgb(blobs[str(p)], p))
        written = _Written(self.seg.cfg.dataset.classes if self.stats else None)
        # A batch is a few images, on a worker that owns its CPUs: a plain loop. A pipeline's threads
        # would cost a fill and a drain per batch (about 45 ms of 8 images here) and overlap nothing the
        # cluster's other workers do not already overlap (2 workers, 2 cores: 0.76 -> 0.83 of a local run).
        with torch_threads(self.threads):
            report = self._run(source, self.image_opts, None, written, mode="sequential")
        by_name = {n: p for p, n, _ in items}
        return replace(report, files=len(items), done=[by_name[n] for n in written.names], rows=written.rows,
                       skipped=list(report.summary.skipped))  # type: ignore[union-attr]

    def video(self, path: str, name: str) -> Report:
        """Label one video as a local run of it would, its outputs named after ``name``."""
        if self.fatal:
            return Report(files=1, fatal=self.fatal)
        try:
            source = open_input(path, self.video_opts)
        except LightsegError as e:  # an unreadable video is skipped, as an unreadable image is
            return Report(files=1, skipped=[Skipped(path, str(e).removeprefix(f"{path}: "))])
        report = self._run(source, self.video_opts, name, _Written(None))
        s: RunSummary = report.summary  # type: ignore[assignment]
        return replace(report, files=1, done=[path] if s.frames else [],
                       skipped=[Skipped(f"{path}: {k.what}", k.reason, k.index) for k in s.skipped])

    def _run(self, source: FrameSource, opts: RunOptions, name: str | None, written: _Written,
             mode: str = "pipelined") -> Report:
        with self.store.staged() if self.store else nullcontext(None) as folder:
            started = time.time()
            try:
                job = assemble(source, self.seg, opts, folder, name=name, extra_sinks=[written])
            except BaseException:
                source.close()
                raise
            summary = job.run(mode, handle_signals=False)
            ended = time.time()
        outputs = [Path(p).relative_to(folder).as_posix() for p in summary.outputs] if folder else []
        return Report(outputs=outputs, summary=summary, started=started, ended=ended)
