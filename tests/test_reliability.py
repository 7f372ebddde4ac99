"""Bad input, damaged files, kills, interrupts, lost streams, full disks: nothing is lost or hangs.

Every case uses real files and real processes: damaged copies of real videos, a SIGINT/SIGTERM
sent to a real `lightseg run`, a sender process killed and restarted mid-stream.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import (
    SENDER,
    SHIPPED,
    count_frames,
    free_port,
    lightseg_cmd,
    make_image,
    make_video,
    need_shared,
    run_cli_process,
    wait_for_receiver,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", frames=60, size=(192, 128), fps=Fraction(25))


# --- bad input ------------------------------------------------------------------------------

def test_missing_file(cli, tmp_path: Path) -> None:
    r = cli("run", tmp_path / "nope.mp4", *SHIPPED)
    assert r.code == 3
    line = one_error_line(r.err)
    assert "nope.mp4" in line and "no such file" in line


def test_text_file_named_mp4(cli, tmp_path: Path) -> None:
    f = tmp_path / "notes.mp4"
    f.write_text("shopping list: milk, eggs\n" * 20)
    r = cli("run", f, *SHIPPED, "--out", tmp_path / "o")
    assert r.code == 3
    line = one_error_line(r.err)
    assert "notes.mp4" in line and "not a video" in line


def test_zero_byte_video(cli, tmp_path: Path) -> None:
    f = tmp_path / "empty.mp4"
    f.write_bytes(b"")
    r = cli("run", f, *SHIPPED)
    assert r.code == 3
    assert "empty.mp4: empty file (0 bytes)" in one_error_line(r.err)


@pytest.mark.skipif(IS_ROOT, reason="root can read files without read permission")
def test_unreadable_file(cli, clip: Path) -> None:
    clip.chmod(0)
    r = cli("run", clip, *SHIPPED)
    assert r.code == 3 and "permission denied" in one_error_line(r.err)


def test_truncated_video_keeps_every_decodable_frame(cli, tmp_path: Path) -> None:
    src = need_shared("video", "solidWhiteRight.mp4")
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    r = cli("run", cut, *SHIPPED, "--save-masks", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert 60 < s["frames"] < 221
    assert s["skipped"] == 221 - s["frames"]
    assert any("could not be decoded" in o for o in s["outages"])
    n, fps, w, h = count_frames(tmp_path / "o" / "cut_overlay.mp4")  # finalised: it plays
    assert (n, fps, w, h) == (s["frames"], Fraction(25), 960, 540)
    assert len(list((tmp_path / "o" / "masks").iterdir())) == s["frames"]


def test_corrupt_packet_in_the_middle(cli, tmp_path: Path) -> None:
    src = need_shared("video", "solidWhiteRight.mp4")
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 20000):
        data[i] = (data[i] * 7 + 13) % 256
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    r = cli("run", bad, *SHIPPED, "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert 200 <= s["frames"] < 221 and s["skipped"] == 221 - s["frames"]
    assert count_frames(tmp_path / "o" / "bad_overlay.mp4")[0] == s["frames"]


# --- kills, resumes, interrupts ----------------------------------------------------------------

def _image_folder(tmp_path: Path, n: int) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        make_image(folder / f"frame_{i:03d}.png", size=(640, 480), seed=i)
    return folder


def _finished_masks(masks: Path) -> list[Path]:
    # pathlib's glob matches dot-files, so a half-written ".name.part.png" would count as done
    return [p for p in masks.glob("*.png") if not p.name.startswith(".")]


def test_killed_folder_run_resumes_with_skip_existing(tmp_path: Path) -> None:
    folder = _image_folder(tmp_path, 30)
    ref = run_cli_process("run", folder, *SHIPPED, "--out", tmp_path / "ref", "-q")
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "out"
    proc = subprocess.Popen([*lightseg_cmd(), "run", str(folder), *SHIPPED, "--out", str(out), "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if (out / "masks").is_dir() and len(_finished_masks(out / "masks")) >= 4:
            break
        time.sleep(0.05)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.wait()
    done_before = len(_finished_masks(out / "masks"))
    assert 0 < done_before < 30
    again = run_cli_process("run", folder, *SHIPPED, "--out", out, "--skip-existing", "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["frames"] == 30 - done_before
    masks = sorted(p.name for p in (out / "masks").iterdir())
    assert masks == sorted(p.name for p in (tmp_path / "ref" / "masks").iterdir())  # one each, no temp files
    for name in masks:
        a = cv2.imread(str(out / "masks" / name), cv2.IMREAD_UNCHANGED)
        b = cv2.imread(str(tmp_path / "ref" / "masks" / name), cv2.IMREAD_UNCHANGED)
        assert a is not None and (a == b).all()


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_finalises_the_video(tmp_path: Path, sig: int, code: int) -> None:
    video = make_video(tmp_path / "long.mp4", frames=400, size=(320, 192))
    proc = subprocess.Popen([*lightseg_cmd(), "run", str(video), *SHIPPED, "--save-masks", "--out",
                             str(tmp_path / "o"), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    masks = tmp_path / "o" / "masks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (masks.is_dir() and len(_finished_masks(masks)) >= 5):
        time.sleep(0.05)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    s = json.loads(out)
    assert s["interrupted"] == signal.Signals(sig).name
    assert 5 <= s["frames"] < 400
    n, *_ = count_frames(tmp_path / "o" / "long_overlay.mp4")  # opens and plays
    assert n == s["frames"] == len(list(masks.glob("*.png")))
    assert not list((tmp_path / "o").rglob(".*.part*"))


def test_a_second_interrupt_aborts_without_draining(tmp_path: Path) -> None:
    """The first SIGINT stops reading and lets queued frames finish; a second one stops now. A deep
    queue of slow frames makes the difference plain: draining it would take far longer than aborting,
    and the video written so far is still finalised."""
    video = make_video(tmp_path / "long.mp4", frames=600, size=(320, 192))
    profile = tmp_path / "deep.toml"
    profile.write_text('name = "deep"\ndevice = "cpu"\nqueue = 40\nworkers = 1\n')
    proc = subprocess.Popen([*lightseg_cmd(), "run", str(video), "--model", "lpsnet-m", "--size", "640x480",
                             "--profile", str(profile), "--save-masks", "--out", str(tmp_path / "o"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    masks = tmp_path / "o" / "masks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (masks.is_dir() and len(_finished_masks(masks)) >= 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    done_at_second = len(_finished_masks(masks))
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 130, err
    s = json.loads(out)
    assert s["interrupted"] == "SIGINT"
    # 40+ queued frames at this size take tens of seconds to drain on a small CPU; an abort finishes
    # only the frames already inside a stage.
    assert took < 10, took
    assert s["frames"] < done_at_second + 12
    n, *_ = count_frames(tmp_path / "o" / "long_overlay.mp4")
    assert n == s["frames"] == len(_finished_masks(masks))


# --- streams --------------------------------------------------------------------------------

@pytest.mark.parametrize("proto", ["udp", "tcp"])
def test_stream_survives_a_restarted_sender(tmp_path: Path, proto: str) -> None:
    clip = make_video(tmp_path / "src.mp4", frames=50, size=(320, 192), fps=Fraction(25))
    port = free_port(socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM)
    url = f"udp://127.0.0.1:{port}" if proto == "udp" else f"tcp://127.0.0.1:{port}?listen=1"
    run = subprocess.Popen([*lightseg_cmd(), "run", url, *SHIPPED, "--timeout", "3", "--reconnect", "4", "--buffer",
                            "8", "--out", str(tmp_path / "o"), "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    receiver = wait_for_receiver(run, port, proto)
    first = subprocess.run([*SENDER, str(clip), f"{proto}://127.0.0.1:{port}"], capture_output=True, timeout=120)
    assert first.returncode == 0
    # the outage: the reader notices (end of stream / no data for --timeout) and opens a new socket
    wait_for_receiver(run, port, proto, other_than=receiver)
    second = subprocess.run([*SENDER, str(clip), f"{proto}://127.0.0.1:{port}", "--connect-timeout", "30"],
                            capture_output=True, timeout=120)
    assert second.returncode == 0
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, err
    s = json.loads(out)
    assert s["reconnects"] >= 1
    assert any("stream lost" in o for o in s["outages"])
    assert s["frames"] > 0 and s["frames"] + s["dropped"] <= 100
    overlay = next((tmp_path / "o").glob("*_overlay.mp4"))
    assert count_frames(overlay)[0] == s["frames"]  # one valid file across the gap


def test_drop_oldest_queue_never_drops_the_end_marker() -> None:
    """A live source's queue drops stale frames, never the end of the stream: a consumer always sees
    END after the newest frames, however full the queue was when the stream ended."""
    import threading

    from lightseg_cli.pipeline.channel import END, Channel

    q = Channel("frames", 2, threading.Event(), "drop-oldest")
    for i in range(5):
        assert q.put(i)
    assert q.dropped == 3
    q.put(END)  # the stream ends while the queue is full: END is queued, nothing more is dropped
    assert q.dropped == 3
    assert [q.get(block=False) for _ in range(4)] == [3, 4, END, None]
    # END first in line of a full queue: later frames (a reader that has not noticed the end yet)
    # push out other frames, never END
    q = Channel("frames", 2, threading.Event(), "drop-oldest")
    q.put(0)
    q.put(1)
    q.put(END)
    for i in range(2, 6):
        q.put(i)
    got = []
    while (item := q.get(block=False)) is not None:
        got.append(item)
    assert got[0] is END and got.count(END) == 1


def test_an_aborted_queue_hands_out_nothing_more() -> None:
    """After an abort every stage's next get() is END, queued items or not: stages stop after the
    item in hand instead of working through their queues while the run returns (and the process exits
    under them)."""
    import threading

    from lightseg_cli.pipeline.channel import END, Channel

    abort = threading.Event()
    q = Channel("results", 4, abort)
    q.put("a")
    q.put("b")
    assert q.get() == "a"
    abort.set()
    assert q.get() is END and q.get(block=False) is END


def test_stream_that_never_opens_fails_in_bounded_time(tmp_path: Path) -> None:
    port = free_port(socket.SOCK_DGRAM)
    t0 = time.monotonic()
    p = run_cli_process("run", f"udp://127.0.0.1:{port}", *SHIPPED, "--timeout", "2", "--out", tmp_path / "o",
                        timeout=60)
    assert time.monotonic() - t0 < 30
    assert p.returncode == 3
    assert "could not open within 2s" in one_error_line(p.stderr)


# --- outputs ----------------------------------------------------------------------------------

def test_output_path_is_a_file(cli, clip: Path, tmp_path: Path) -> None:
    f = tmp_path / "taken"
    f.write_text("x")
    r = cli("run", clip, *SHIPPED, "--out", f)
    assert r.code == 3 and "exists and is a file" in one_error_line(r.err)
    r = cli("run", clip, *SHIPPED, "--out", f / "sub")
    assert r.code == 3 and "not writable" in one_error_line(r.err)


@pytest.mark.skipif(IS_ROOT, reason="root can write into read-only folders")
def test_read_only_output_folder(cli, clip: Path, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    r = cli("run", clip, *SHIPPED, "--out", ro / "o")
    assert r.code == 3 and "not writable" in one_error_line(r.err)


def test_disk_full_mid_run_stops_cleanly(tmp_path: Path) -> None:
    video = make_video(tmp_path / "v.mp4", frames=200, size=(640, 384))
    limit = 300_000  # bytes per file: the overlay video outgrows it mid-run, as on a full disk

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    p = subprocess.run([*lightseg_cmd(), "run", str(video), *SHIPPED, "--save-masks", "--crf", "0", "--out",
                        str(tmp_path / "o"), "--json"], capture_output=True, text=True, timeout=300,
                       preexec_fn=small_files)
    assert p.returncode == 1, p.stderr  # partial
    s = json.loads(p.stdout)
    assert "v_overlay.mp4" in s["error"] and ("too large" in s["error"].lower() or "space" in s["error"].lower())
    assert 0 < s["frames"] < 200
    assert not (tmp_path / "o" / "v_overlay.mp4").exists()  # no unplayable file under the final name
    masks = list((tmp_path / "o" / "masks").glob("*.png"))
    assert len(masks) >= s["frames"] - 8
    assert all(cv2.imread(str(m), cv2.IMREAD_UNCHANGED) is not None for m in masks)
    assert not list((tmp_path / "o").rglob(".*.part*"))


# --- hostile names, nothing executed ------------------------------------------------------------

def test_hostile_names(tmp_path: Path) -> None:
    folder = tmp_path / "my clips ü"
    folder.mkdir()
    video = make_video(folder / "-dash cam ü.mp4", frames=8)
    out = tmp_path / "out dir ü"
    p = run_cli_process("run", *SHIPPED, "--out", out, "--json", "--", video)
    assert p.returncode == 0, p.stderr
    assert count_frames(out / "-dash cam ü_overlay.mp4")[0] == 8
    img = folder / "-img ü.jpg"
    cv2.imencode(".jpg", np.full((64, 96, 3), 120, np.uint8))[1].tofile(str(img))
    p = run_cli_process("run", *SHIPPED, "--out", tmp_path / "imgs", "--json", "--", img)
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "imgs" / "masks" / "-img ü.png").is_file()


def test_profile_files_are_data_not_code(cli, clip: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.toml"
    evil.write_text(f'name = __import__("os").system("touch {marker}")\n')
    r = cli("run", clip, *SHIPPED, "--profile", evil, "--out", tmp_path / "o")
    assert r.code == 2 and "not valid TOML" in one_error_line(r.err)
    assert not marker.exists()


def test_checkpoints_are_loaded_as_data(cli, clip: Path, tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):  # what a malicious pickle would do when unpickled
            return (os.system, (f"touch {marker}",))

    ck = tmp_path / "evil.pth"
    ck.write_bytes(pickle.dumps({"meta": Payload()}))
    r = cli("run", clip, "--model", ck, "--out", tmp_path / "o")
    assert r.code == 3 and "not a lightseg checkpoint" in one_error_line(r.err)
    assert not marker.exists()


def test_unreadable_special_file(cli, tmp_path: Path) -> None:
    """What root cannot be denied, a FIFO still cannot be read as a video: one line, no hang."""
    fifo = tmp_path / "camera.mp4"
    os.mkfifo(fifo)
    r = cli("run", fifo, *SHIPPED)
    assert r.code == 3 and "camera.mp4: not a regular file" in one_error_line(r.err)


def test_missing_camera(cli) -> None:
    r = cli("run", "7", *SHIPPED, "--no-save")
    assert r.code == 3
    assert "camera 7: could not be opened" in one_error_line(r.err)
    r = cli("probe", "/dev/video9")
    assert r.code == 3 and "camera /dev/video9" in one_error_line(r.err)


class _ExplodingSource:
    """A real video source whose decoder raises at frame ``at``."""

    def __init__(self, inner, at: int) -> None:
        self.inner, self.at = inner, at
        self.info, self.report = inner.info, inner.report

    def __iter__(self):
        for i, item in enumerate(self.inner):
            if i == self.at:
                raise RuntimeError("decoder exploded")
            yield item

    def close(self) -> None:
        self.inner.close()


class _ExplodingSink:
    """A sink whose ``write`` raises on its ``at``-th result, as a full disk or a dead display would."""

    def __init__(self, at: int) -> None:
        self.at, self.n = at, 0

    def write(self, result) -> None:
        self.n += 1
        if self.n == self.at:
            raise RuntimeError("write exploded")

    def close(self) -> list[Path]:
        return []


def _explode_on_call(fn, at: int, what: str):
    calls = {"n": 0}

    def broken(*args, **kw):
        calls["n"] += 1
        if calls["n"] == at:
            raise RuntimeError(f"{what} exploded")
        return fn(*args, **kw)

    return broken


@pytest.mark.parametrize("stage", ["decode", "infer", "postprocess", "write"])
def test_a_dying_stage_ends_the_run_without_hanging(tmp_path: Path, stage: str) -> None:
    """Each stage fails through a public seam (the source, the segmenter, a sink) on the 10th frame."""
    from lightseg_cli.draw.overlay import Overlay
    from lightseg_cli.infer.segmenter import Segmenter
    from lightseg_cli.pipeline.job import exit_code
    from lightseg_cli.pipeline.pipeline import Pipeline, PipelineCfg
    from lightseg_cli.sinks.outputs import MaskDir, OverlayVideo
    from lightseg_cli.sources import open_source

    video = make_video(tmp_path / "v.mp4", frames=40)
    seg = Segmenter("lpsnet-s", size=(240, 176))
    source = open_source(str(video))
    if stage == "decode":
        source = _ExplodingSource(source, at=10)
    elif stage == "infer":
        seg.infer = _explode_on_call(seg.infer, 10, "infer")  # type: ignore[method-assign]
    elif stage == "postprocess":
        seg.labels = _explode_on_call(seg.labels, 10, "postprocess")  # type: ignore[method-assign]
    out = tmp_path / "o"
    sinks = [OverlayVideo(out / "v_overlay.mp4", source.info.fps), MaskDir(out / "masks", "v_{index:06d}")]
    if stage == "write":
        sinks.insert(0, _ExplodingSink(at=10))  # first, so no other sink sees the failed result
    cfg = seg.cfg
    pipe = Pipeline(source, seg, Overlay(cfg.dataset.palette, cfg.dataset.classes), sinks,
                    PipelineCfg(workers=2, queue=2))
    t0 = time.monotonic()
    s = pipe.run(handle_signals=False)
    assert time.monotonic() - t0 < 60
    assert "exploded" in s.error
    assert 0 < s.frames < 40 and exit_code(s) == 1
    n, *_ = count_frames(out / "v_overlay.mp4")  # still finalised
    assert n == s.frames == len(list((out / "masks").glob("*.png")))
