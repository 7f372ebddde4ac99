"""``lightseg run SOURCE --engine ray``: a run on Ray Data, on this machine or a cluster.

The driver (this process) lists the work and chooses the output folder exactly as a local run
does (same names, ``--skip-existing``, ``--stride``, ``--frames``); then Ray Data reads the image
files (their paths carried along) and streams them in batches to a pool of actors, each holding
one :class:`~.work.Worker` (one segmenter, built once, on the worker). Workers write their
outputs into the store themselves and send back a small report per unit; the driver only counts,
shows progress and, with ``--stats``, writes the statistics file. Videos are units of their own
(one video, one task), labelled after the images by a pool of the same workers.

Faults: an actor whose process dies is restarted and its unfinished units are retried (Ray
Data's actor pools set ``max_restarts`` and ``max_task_retries`` to -1: as often as it takes);
outputs are written atomically and named by the driver, so a retried unit rewrites the same files
and a killed one leaves only temporary files, removed at the end of the run.

One read task and one input block per unit: an actor pool hands out whole blocks, so a block of
several units would be labelled by one worker while the others wait.
"""

from __future__ import annotations

import json
import logging
import math
import pickle
import statistics
import threading
import time
from collections.abc import Generator
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import SourceError, UsageError
from ..pipeline import signals
from ..pipeline.job import MASKS, mask_file, overlay_video_file
from ..pipeline.stats import FPSMeter, RunSummary
from ..sources.images import IMAGE_SUFFIXES, ImageSource, unique_names
from ..sources.resolve import VIDEO_SUFFIXES, classify, listed_files, of_kind, source_name
from ..types import Skipped, SourceInfo
from .store import Store, open_store
from .work import Report, Worker, WorkSpec

MISSING = "--engine ray needs Ray, an optional extra: pip install 'lightseg[ray]'"
try:
    import ray
    import ray.data
except ImportError:
    raise UsageError(MISSING) from None

READERS_PER = 8  # workers per concurrent read task


@dataclass(frozen=True)
class Cluster:
    """Where a run goes and how many workers it gets."""

    address: str | None = None  # None: a new Ray instance on this machine; "auto", "ray://head:10001": a cluster
    workers: int | None = None  # actors (None: one per CPU of the cluster, or per gpus_per_worker GPUs)
    threads: int = 1  # CPUs, and torch threads, of each worker
    gpus_per_worker: float = 0.0
    files_per_batch: int = 8  # images per unit of work: what a killed worker's retry redoes


class _Images:
    """Ray Data actor: labels a batch of read image files."""

    def __init__(self, spec: WorkSpec, store: Store | None, names: dict[str, str]) -> None:
        self.worker, self.names = Worker(spec, store), names

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        items = [(p, self.names.get(p, Path(p).stem), data) for p, data in zip(batch["path"], batch["bytes"])]
        return {"report": [pickle.dumps(self.worker.images(items))]}


class _Videos:
    """Ray Data actor: labels one video per call."""

    def __init__(self, spec: WorkSpec, store: Store | None) -> None:
        self.worker = Worker(spec, store)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[bytes]]:
        return {"report": [pickle.dumps(self.worker.video(p, n)) for p, n in zip(batch["path"], batch["name"])]}


def _inputs(source: str) -> tuple[list[Path], list[Path]]:
    """The images and the videos a SOURCE names (files only: ray has no use for live sources)."""
    kind = classify(source)
    if kind not in ("images", "image", "video"):
        raise UsageError(f"{source}: --engine ray labels files (image folders, globs, list files, videos); "
                         "run cameras, streams and stdin with the local engine")
    if kind != "images" and not Path(source).is_file():
        raise SourceError(f"{source}: no such file or folder")
    files = listed_files(source) if kind == "images" else [Path(source)]
    images, videos = of_kind(files, IMAGE_SUFFIXES), files if kind == "video" else of_kind(files, VIDEO_SUFFIXES)
    if not images and not videos:
        raise SourceError(f"{source}: no images or videos (supported: {', '.join(sorted(IMAGE_SUFFIXES))}; "
                          f"{', '.join(sorted(VIDEO_SUFFIXES))})")
    return images, videos


def _connect(cluster: Cluster) -> bool:
    """Join the cluster (or start a local instance); True when this call started Ray."""
    if ray.is_initialized():
        return False
    ray.init(address=cluster.address or "local", include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False)
    return True


def _quiet() -> None:
    """lightseg shows its own progress and summary: no Ray Data bars or execution logs."""
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.verbose_stats_logs = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)


class RayJob:
    """A run prepared on the driver: :meth:`run` executes it, :meth:`snapshot` shows progress."""

    def __init__(self, source: str, spec: WorkSpec, cluster: Cluster, out: str | None = None) -> None:
        self.spec, self.cluster = spec, cluster
        opts = spec.options
        images, videos = _inputs(source)
        kind = classify(source)
        self.name = source_name(source, kind)
        where = out or str(opts.out or Path("runs") / self.name)
        self.store = open_store(where, opts.exist_ok or opts.skip_existing) if opts.save else None
        resume = opts.skip_existing and self.store is not None
        masks = self.store.listing(MASKS) if resume else set()  # type: ignore[union-attr]
        listed = ImageSource(images, source, self.name, skip=lambda n: Path(mask_file(n)).name in masks)
        picked = list(zip(listed.paths, listed.names))[:: spec.stride][: spec.max_frames]
        tops = self.store.listing("") if resume else set()  # type: ignore[union-attr]
        clips = [(p, n) for p, n in zip(videos, unique_names(videos)) if overlay_video_file(n) not in tops]
        # Workers get absolute paths (their working folder is not ours); the user sees the paths as listed.
        self.images = [(str(p.absolute()), n) for p, n in picked]
        self.videos = [(str(p.absolute()), n) for p, n in clips]
        self.shown = {str(p.absolute()): str(p) for p, _ in picked + clips}
        self.info = SourceInfo(kind="images" if images or not videos else "video", uri=source, name=self.name,
                               frames=len(self.images) + len(self.videos), decoder="ray-data")
        self.out_dir = None if self.store is None else str(self.store)
        self.fps = FPSMeter()
        self.t_start = time.monotonic()
        self.interrupted: str | None = None
        self.workers = cluster.workers or 0  # known once connected
        self._lock = threading.Lock()  # the figures below are read by the progress thread
        self.files = 0  # input files accounted for (labelled or skipped)
        self.frames = 0
        self.done: set[str] = set()
        self.skipped: list[Skipped] = []
        self.missing = 0
        self.rows: list[dict] = []
        self.outputs: set[str] = set()
        self.stage_ms: dict[str, list[float]] = {}
        self.first: RunSummary | None = None
        self.span = [math.inf, -math.inf]
        self.busy = 0.0  # seconds the workers spent in units, all together
        self.error: str | None = None

    # ---- progress and control ---------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """Live figures in the shape ``cli.live`` shows (files instead of frames)."""
        total = self.info.frames or 0
        avg = self.fps.average(self.fps.start) if self.fps.start is not None else 0.0
        with self._lock:
            stages = self._stages()
        return {"unit": "files", "frames": self.files, "total": total, "fps": self.fps.instant, "fps_avg": avg,
                "eta": (total - self.files) / avg if avg > 0 else None, "stages_ms": stages, "queues": {},
                "dropped": 0, "skipped": len(self.skipped), "bottleneck": _slowest(stages), "workers": self.workers,
                "post_workers": 1, "elapsed": time.monotonic() - self.t_start}

    def request_stop(self, reason: str | None = None) -> None:
        """Take no more results; a second request gives up at once (KeyboardInterrupt)."""
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = reason or "stopped"

    def _pool_size(self) -> int:
        """``--workers``, else as many workers as the cluster has CPUs (GPUs with ``--gpus-per-worker``) for."""
        c = self.cluster
        have = ray.cluster_resources()
        fit = have.get("GPU", 0) // c.gpus_per_worker if c.gpus_per_worker else have.get("CPU", 1) // c.threads
        return c.workers or max(1, int(fit))

    # ---- the run ------------------------------------------------------------------------------
    def run(self) -> RunSummary:
        """Execute the run (a local Ray instance is started and stopped around it when needed)."""
        started = _connect(self.cluster)
        _quiet()
        self.t_start = time.monotonic()
        try:
            self.workers = self._pool_size()
            with signals.handle_signals(self.request_stop):
                self._take_all(self._image_reports())
                self._take_all(self._video_reports())
            if self.store is not None:
                self._write_stats()
                self.store.clean()
        except (ray.exceptions.RayError, ray.data.exceptions.SystemException) as e:  # e.g. a worker out of restarts
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        finally:
            if started:
                ray.shutdown()
        return self._summary()

    def _pool(self, ds: ray.data.Dataset, units: int, udf: type, kwargs: dict[str, Any],
              batch: int) -> Generator[bytes, None, None]:
        """The reports of ``units`` units of ``ds`` labelled by a pool of ``udf`` actors (no more than units)."""
        c = self.cluster
        pool = ray.data.ActorPoolStrategy(size=min(self.workers, units), max_tasks_in_flight_per_actor=2)
        ds = ds.map_batches(udf, fn_constructor_kwargs={"spec": self.spec, "store": self.store, **kwargs},
                            batch_size=batch, batch_format="numpy", compute=pool,
                            num_cpus=c.threads, num_gpus=c.gpus_per_worker or None)
        for out in ds.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0):
            yield from out["report"]

    def _image_reports(self) -> Generator[bytes, None, None]:
        if not self.images:
            return
        paths = [a for a, _ in self.images]
        batch = self.cluster.files_per_batch
        units = math.ceil(len(paths) / batch)
        # Reading is I/O: it asks for no CPU, so it never waits for the workers holding every CPU, and
        # a few tasks at a time keep them fed (each concurrent task is a Python process of its own).
        ds = ray.data.read_binary_files(paths, include_paths=True, num_cpus=0, ignore_missing_paths=True,
                                        override_num_blocks=units,
                                        concurrency=max(1, self.workers // READERS_PER))
        renamed = {a: n for a, n in self.images if n != Path(a).stem}  # names that are not the file's stem
        yield from self._pool(ds, units, _Images, {"names": renamed}, batch)

    def _video_reports(self) -> Generator[bytes, None, None]:
        if self.videos and not (self.interrupted or self.error):
            ds = ray.data.from_items([{"path": a, "name": n} for a, n in self.videos],
                                     override_num_blocks=len(self.videos))
            yield from self._pool(ds, len(self.videos), _Videos, {}, 1)

    def _take_all(self, reports: Generator[bytes, None, None]) -> None:
        with closing(reports):  # stopping early ends the dataset's execution, and its workers, now
            for blob in reports:
                with self._lock:
                    self._take(pickle.loads(blob))
                if self.interrupted or self.error:
                    return

    def _take(self, r: Report) -> None:
        if r.fatal:
            raise r.fatal
        s = r.summary
        if s is not None:
            self.first = self.first or s
            self.frames += s.frames
            self.missing += s.missing
            self.error = self.error or s.error
            for stage, ms in s.stages_ms.items():
                if ms is not None:
                    self.stage_ms.setdefault(stage, []).append(ms)
            self.span = [min(self.span[0], r.started), max(self.span[1], r.ended)]
            self.busy += r.ended - r.started
        self.done.update(r.done)
        self.skipped += [replace(k, what=self.shown.get(k.what, k.what)) for k in r.skipped]
        self.rows += r.rows
        self.outputs.update(r.outputs)
        self.files += r.files
        self.fps.tick(r.files)

    def _write_stats(self) -> None:
        if not (self.spec.options.stats and self.rows):
            return
        index = {n: i for i, (_, n) in enumerate(self.images)}
        rows = sorted(({**row, "index": index[row["name"]]} for row in self.rows), key=lambda row: row["index"])
        rel = f"{self.name}_stats.jsonl"
        self.store.write_bytes(rel, "".join(json.dumps(row) + "\n" for row in rows).encode())  # type: ignore[union-attr]
        self.outputs.add(rel)

    def _stages(self) -> dict[str, float | None]:
        return {s: statistics.median(v) for s, v in self.stage_ms.items()}

    def _summary(self) -> RunSummary:
        # Files no report mentions (gone before Ray Data read them) are skipped too, once the run is complete.
        seen = self.done | {k.what for k in self.skipped}
        lost = [Skipped(self.shown[a], "not read (missing or unreadable)") for a, _ in self.images + self.videos
                if a not in seen and self.shown[a] not in seen] if not (self.interrupted or self.error) else []
        base = self.first or RunSummary(source=self.info, model=self.spec.model, size=(0, 0), device="-",
                                        backend="-", mode="pipelined")
        stages = self._stages()
        c = self.cluster
        return replace(
            base, source=self.info, frames=self.frames, stages_ms=stages, bottleneck=_slowest(stages),
            seconds=max(0.0, self.span[1] - self.span[0]), dropped=0, skipped=self.skipped + lost,
            missing=self.missing, outages=[], reconnects=0, error=self.error, interrupted=self.interrupted,
            outputs=[self.store.show(o) for o in sorted(self.outputs)] if self.store else [],  # type: ignore[misc]
            layout={"engine": "ray", "address": c.address or "local", "workers": self.workers,
                    "threads_per_worker": c.threads, "gpus_per_worker": c.gpus_per_worker, "postprocess_workers": 1,
                    "chosen_by": "--engine ray", "files_per_batch": c.files_per_batch,
                    "worker_seconds": round(self.busy, 3)},  # frames / worker_seconds: one worker's rate
        )


def _slowest(stages: dict[str, float | None]) -> str | None:
    timed = {s: v for s, v in stages.items() if v is not None}
    return max(timed, key=timed.__getitem__) if timed else None


def prepare(source: str, spec: WorkSpec, cluster: Cluster = Cluster(), out: str | None = None) -> RayJob:
    """List the work of ``lightseg run SOURCE --engine ray`` and choose its output folder; nothing
    runs until :meth:`RayJob.run`. ``out``: the output folder as a path or URI (default
    ``spec.options.out``, else ``runs/<source name>``). Raises the errors a local run raises for
    the same SOURCE and output folder, before any cluster is contacted.

    Example:
        >>> spec = WorkSpec("lpsnet-m", partial(build_segmenter, "lpsnet-m"), RunOptions(stats=True))
        >>> summary = prepare("frames/", spec, Cluster(address="auto"), out="s3://bucket/run1").run()
    """
    return RayJob(source, spec, cluster, out)


__all__ = ["MISSING", "Cluster", "RayJob", "prepare"]
