"""The pipeline's seams: the prepared job, what sinks declare, skipping when a source is opened,
signal handling, stage timers on the device's clock, the TensorRT backend's stream order and a
hardware decoder that falls back to software. All run on a CPU."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightseg_cli.sinks.outputs import Sink, encode_png

from .conftest import make_video, need_shared


def make_image(path: Path, seed: int = 0) -> Path:
    """A small real image file of random pixels (160x120)."""
    img = np.random.default_rng(seed).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture(scope="module")
def seg():
    from lightseg_cli.infer.segmenter import Segmenter

    return Segmenter("lpsnet-s", size=(240, 176))


# --- the prepared job -----------------------------------------------------------------------------

def test_prepare_returns_a_frozen_job_with_its_output_folder(tmp_path: Path, seg) -> None:
    from lightseg_cli.pipeline.job import Job, RunOptions, prepare

    video = make_video(tmp_path / "clip.mp4", frames=12)
    job = prepare(str(video), seg, RunOptions(out=tmp_path / "o", save_masks=True))
    assert isinstance(job, Job) and job.out_dir == tmp_path / "o"
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.out_dir = tmp_path  # type: ignore[misc]
    s = job.run(handle_signals=False)
    assert s.frames == 12 and s.fps > 0 and s.error is None
    assert set(s.outputs) == {tmp_path / "o" / "clip_overlay.mp4", tmp_path / "o" / "masks"}

    nothing = prepare(str(video), seg, RunOptions(save=False))
    assert nothing.out_dir is None and nothing.run(handle_signals=False).frames == 12


# --- skipping inputs when the source is opened ----------------------------------------------------------------

def test_open_source_skips_by_output_name(tmp_path: Path) -> None:
    from lightseg_cli.sources import open_source

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(4):
        make_image(folder / f"f{i}.png", seed=i)
    make_image(folder / "f1.jpg")  # same stem: its output name is f1_2
    src = open_source(str(folder), skip=lambda name: name in {"f1", "f3"})
    assert src.info.frames == 3
    assert [f.name for f in src] == ["f0", "f1_2", "f2"]
    single = open_source(str(folder / "f0.png"), skip=lambda name: True)
    assert single.info.frames == 0 and list(single) == []
    assert single.info.width == 160  # still describes the image it was given


def test_skip_existing_leaves_out_finished_images(tmp_path: Path, seg) -> None:
    from lightseg_cli.pipeline.job import RunOptions, prepare

    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        make_image(folder / f"f{i}.png", seed=i)
    (tmp_path / "o" / "masks").mkdir(parents=True)
    (tmp_path / "o" / "masks" / "f1.png").write_bytes(b"done before")
    job = prepare(str(folder), seg, RunOptions(out=tmp_path / "o", skip_existing=True))
    assert job.out_dir == tmp_path / "o" and job.source.info.frames == 2
    s = job.run(handle_signals=False)
    assert s.frames == 2
    assert (tmp_path / "o" / "masks" / "f1.png").read_bytes() == b"done before"


# --- what sinks declare -----------------------------------------------------------------------------------

class _Recorder(Sink):
    """A sink as a third party would write one: it subclasses Sink and overrides what it needs."""

    def __init__(self, main_thread: bool = False, stop_after: int | None = None) -> None:
        self.needs_main_thread = main_thread
        self.stop_after = stop_after
        self.threads: set[str] = set()
        self.n = 0

    def write(self, result) -> None:
        self.threads.add(threading.current_thread().name)
        self.n += 1

    def close(self) -> list[Path]:
        return []

    def stop_requested(self) -> str | None:
        return "window" if self.stop_after is not None and self.n >= self.stop_after else None


def _pipeline(tmp_path: Path, seg, sinks: list, frames: int = 30):
    from lightseg_cli.pipeline.pipeline import Pipeline, PipelineCfg
    from lightseg_cli.sources import open_source

    video = make_video(tmp_path / "v.mp4", frames=frames)
    return Pipeline(open_source(str(video)), seg, None, sinks, PipelineCfg(queue=2))


def test_sinks_declare_their_needs() -> None:
    from lightseg_cli.sinks.outputs import MaskDir, OverlayVideo, Sink, StatsLog, Window

    for cls in (MaskDir, OverlayVideo, StatsLog):
        assert Sink in cls.__mro__ and cls.needs_main_thread is False
    assert Window.needs_main_thread is True
    assert OverlayVideo.takes_i420 and not Window.takes_i420


def test_the_overlay_is_drawn_as_i420_only_when_an_overlay_video_alone_reads_it(tmp_path: Path, seg) -> None:
    from lightseg_cli.draw.overlay import Overlay
    from lightseg_cli.pipeline.pipeline import Pipeline
    from lightseg_cli.sinks.outputs import MaskDir, OverlayDir, OverlayVideo
    from lightseg_cli.sources import open_source

    overlay = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes)
    video = OverlayVideo(tmp_path / "o.mp4", fps=25)
    masks, jpegs = MaskDir(tmp_path / "m", "{index}"), OverlayDir(tmp_path / "j")
    source = open_source(str(make_video(tmp_path / "v.mp4", frames=2)))
    for sinks, i420 in [([video], True), ([video, masks], True), ([video, jpegs], False), ([masks], False)]:
        assert Pipeline(source, seg, overlay, sinks).overlay_i420 is i420


def test_a_sink_that_needs_the_main_thread_gets_the_writer(tmp_path: Path, seg) -> None:
    rec, other = _Recorder(main_thread=True), _Recorder()
    s = _pipeline(tmp_path, seg, [rec, other], frames=8).run(handle_signals=False)
    assert s.frames == 8 and rec.threads == other.threads == {threading.main_thread().name}
    (tmp_path / "b").mkdir()
    rec = _Recorder()
    _pipeline(tmp_path / "b", seg, [rec], frames=8).run(handle_signals=False)
    assert rec.threads == {"write"}


def test_a_sink_can_stop_the_run_and_what_is_queued_is_finished(tmp_path: Path, seg) -> None:
    rec = _Recorder(stop_after=3)
    pipe = _pipeline(tmp_path, seg, [rec], frames=60)
    s = pipe.run(handle_signals=False)
    assert s.interrupted == "window" and s.error is None
    assert 3 <= s.frames < 60 and s.frames == rec.n
    assert not pipe.abort.is_set()  # asked once: a drain, not an abort


# --- signals -------------------------------------------------------------------------------------------

_SIGNALS_CHILD = """
import os, signal, threading, time
from lightseg_cli.pipeline.signals import handle_signals

def wait_for(cond, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)
    return cond()

before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
calls = []
with handle_signals(calls.append):
    os.kill(os.getpid(), signal.SIGTERM)
    assert wait_for(lambda: calls == ["SIGTERM"]), calls
    os.kill(os.getpid(), signal.SIGINT)
    assert wait_for(lambda: calls == ["SIGTERM", "SIGINT"]), calls
assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before

def elsewhere():  # only the main thread may install handlers: the block still runs
    with handle_signals(calls.append):
        calls.append("ran")

t = threading.Thread(target=elsewhere)
t.start()
t.join()
assert calls[-1] == "ran" and signal.getsignal(signal.SIGINT) == before[1], calls
print("ok")
"""


def test_handle_signals_calls_stop_and_restores_the_handlers() -> None:
    """In a process of its own: real signals to a real process (this test process may hold threads
    of native libraries loaded by other tests, e.g. OpenVINO's, which are no part of this check)."""
    r = subprocess.run([sys.executable, "-c", _SIGNALS_CHILD], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_a_second_stop_request_aborts(tmp_path: Path, seg) -> None:
    pipe = _pipeline(tmp_path, seg, [], frames=2)
    pipe.request_stop("SIGINT")
    assert pipe.stopping.is_set() and not pipe.abort.is_set()
    pipe.request_stop("SIGTERM")
    assert pipe.abort.is_set() and pipe.interrupted == "SIGINT"


# --- stage timers ------------------------------------------------------------------------------------

class _Device:
    """A stand-in for a GPU: a clock in milliseconds, one stream whose events complete in order
    when told to."""

    def __init__(self) -> None:
        self.now = 0.0
        self.recorded: list[_Event] = []
        self.waited: list[_Event] = []

    def event(self) -> _Event:
        return _Event(self)

    def complete(self, upto: _Event) -> None:
        for e in self.recorded[: self.recorded.index(upto) + 1]:
            e.done = True


class _Event:
    def __init__(self, dev: _Device) -> None:
        self.dev, self.t, self.stream, self.done = dev, None, None, False

    def record(self, stream=None) -> None:
        self.t, self.stream = self.dev.now, stream
        self.dev.recorded.append(self)

    def query(self) -> bool:
        return self.done

    def synchronize(self) -> None:
        if not self.done:
            self.dev.waited.append(self)
            self.dev.complete(self)

    def elapsed_time(self, end: _Event) -> float:
        assert self.done and end.done
        return end.t - self.t


def test_timers_are_chosen_by_device_type() -> None:
    from lightseg_cli.pipeline.stats import STAGES, EventTimer, StageTimer, stage_timers

    cpu = stage_timers(torch.device("cpu"))
    assert set(cpu) == set(STAGES) and not any(isinstance(t, EventTimer) for t in cpu.values())
    dev = _Device()
    cuda = stage_timers(torch.device("cuda"), new_event=dev.event, stream=lambda: "stream")
    assert {s for s, t in cuda.items() if isinstance(t, EventTimer)} == {"preprocess", "infer", "postprocess"}
    assert type(cuda["decode"]) is StageTimer and type(cuda["write"]) is StageTimer


def test_event_timer_reads_spans_lazily_without_waiting_in_the_stage() -> None:
    from lightseg_cli.pipeline.stats import EventTimer

    dev = _Device()
    timer = EventTimer("infer", dev.event, stream=lambda: "current", pending=8)
    with timer.time(frames=2):
        dev.now += 10.0  # the device runs the stage's kernels: 10 ms for 2 frames
    (start, end, _), = timer._pending
    assert start.stream == end.stream == "current"
    assert timer.recent() is None and not dev.waited  # not complete yet: nothing read, nobody waits
    dev.complete(end)
    with timer.time(frames=1):  # the next item arrives: the finished span is read now
        dev.now += 4.0
    assert timer.recent() == pytest.approx(5.0) and not dev.waited
    assert timer.median() == pytest.approx(5.0)  # the summary waits for the last span, that one only
    assert len(dev.waited) == 1 and timer.frames == 3 and timer.busy == pytest.approx(0.014)


def test_event_timer_bounds_unread_spans() -> None:
    from lightseg_cli.pipeline.stats import EventTimer

    dev = _Device()
    timer = EventTimer("infer", dev.event, stream=lambda: None, pending=4)
    for _ in range(6):
        with timer.time():
            dev.now += 1.0
    assert len(timer._pending) == 4 and len(dev.waited) == 2  # the oldest ones, one at a time
    assert timer.recent() == pytest.approx(1.0)


def test_host_timer_and_bottleneck() -> None:
    from lightseg_cli.pipeline.stats import RunStats, StageTimer

    t = StageTimer("decode")
    with t.time(frames=4):
        time.sleep(0.02)
    assert t.median() >= 4.0 and t.frames == 4
    stats = RunStats(torch.device("cpu"), workers=2)
    per = {"decode": 1.0, "infer": 10.0, "write": 6.0, "preprocess": None}
    assert stats.bottleneck(per, "pipelined") == "write"  # two workers share inference
    assert stats.bottleneck(per, "sequential") == "infer"


def test_pipeline_on_cpu_uses_host_timers(tmp_path: Path, seg) -> None:
    from lightseg_cli.pipeline.stats import EventTimer

    pipe = _pipeline(tmp_path, seg, [], frames=6)
    assert not any(isinstance(t, EventTimer) for t in pipe.stats.timers.values())
    s = pipe.run(mode="sequential", handle_signals=False)
    assert s.frames == 6 and all(v is not None for v in s.stages_ms.values())
    snap = pipe.snapshot()
    assert snap["frames"] == 6 and snap["total"] == 6 and set(snap["stages_ms"]) == set(s.stages_ms)


# --- TensorRT: the engine's stream is ordered after the caller's -------------------------------------

def test_tensorrt_backend_orders_its_stream_after_the_callers(monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from lightseg_cli.infer.backends import TensorRTBackend

    log: list[str] = []

    class Stream:
        def __init__(self, name: str) -> None:
            self.name, self.cuda_stream = name, id(self)

        def wait_stream(self, other: Stream) -> None:
            log.append(f"{self.name} waits for {other.name}")

    caller, engine = Stream("caller"), Stream("engine")
    current = [caller]

    @contextmanager
    def on(stream: Stream):
        current.append(stream)
        try:
            yield
        finally:
            current.pop()

    class Context:
        def set_tensor_address(self, name: str, ptr: int) -> None:
            pass

        def execute_async_v3(self, handle: int) -> None:
            assert current[-1] is engine and handle == engine.cuda_stream
            log.append("execute")

    def record_stream(t: torch.Tensor, stream: Stream) -> None:
        log.append(f"{'input' if t.shape[0] == 2 else 'output'} used on {stream.name}")

    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: current[-1])
    monkeypatch.setattr(torch.cuda, "stream", on)
    monkeypatch.setattr(torch.Tensor, "record_stream", record_stream)
    trt = TensorRTBackend.__new__(TensorRTBackend)
    trt.device, trt.context, trt.out_shape, trt.stream = torch.device("cpu"), Context(), (1, 3, 4, 4), engine
    trt._lock = threading.Lock()
    out = trt(torch.zeros(2, 3, 4, 4))
    assert out.shape == (2, 3, 4, 4)
    assert log == ["engine waits for caller", "input used on engine", "execute", "output used on caller",
                   "execute", "output used on caller", "caller waits for engine"]


# --- a hardware decoder that falls back -----------------------------------------------------------------------

def test_probe_reports_the_decoder_that_runs(cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "clip.mp4", frames=5)
    r = cli("probe", video, "--decoder", "pyav-hw", "--json")
    assert r.code == 0, r.err
    p = r.json()
    if p["fallback"] is None:
        assert "hwaccel=cuda" in p["decoder"]
        pytest.skip("FFmpeg's CUDA decoder works here: nothing falls back")
    assert "software" in p["decoder"] and "cuda" in p["fallback"]
    warnings = [ln for ln in r.err.splitlines() if "decoding in software" in ln]
    assert len(warnings) == 1 and p["fallback"] in warnings[0]
    plain = cli("probe", video, "--json").json()
    assert plain["decoder"].endswith("(software)") and plain["fallback"] is None
    assert cli("probe", video, "--decoder", "nvdec").code == 2


def test_mask_png_is_lossless_and_smaller_than_level_one_alone() -> None:
    """Masks keep every label exactly; the filter and strategy chosen for label maps beat libpng's
    adaptive filters in size on real ones (and in time: benchmarks/mask_png.py)."""
    camvid = need_shared("data", "camvid")
    lines = (camvid / "val.txt").read_text().splitlines()[:5]
    masks = [cv2.resize(cv2.imread(str(camvid / ln.split()[1]), cv2.IMREAD_GRAYSCALE), (960, 540),
                        interpolation=cv2.INTER_NEAREST) for ln in lines]
    ours = [encode_png(m) for m in masks]
    for m, png in zip(masks, ours):
        assert np.array_equal(cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED), m)
    if hasattr(cv2, "IMWRITE_PNG_FILTER"):
        plain = sum(len(cv2.imencode(".png", m, [cv2.IMWRITE_PNG_COMPRESSION, 1])[1]) for m in masks)
        assert sum(map(len, ours)) < 0.8 * plain
