"""Shared fixtures: the ../shared data folder, weights from it, generated videos, a CLI runner."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LIGHTSEG_SHARED", ROOT.parent / "shared")).resolve()
SENDER = [sys.executable, str(ROOT / "tests" / "tools" / "sender.py")]  # streams a clip like a camera would
# Pipeline-mechanics tests run on LPS-Net S, whose weights ship inside the package: they need no ../shared.
SHIPPED = ["--model", "lpsnet-s"]


def need_shared(*parts: str) -> Path:
    """A path under ../shared, or skip the test saying exactly what is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} is absent (set LIGHTSEG_SHARED to the shared data folder)")
    return p


def floor_scores(seg, tmp_path: Path) -> tuple[float, float]:
    """mIoU of ``seg`` on every 20th CamVid val frame and every 20th frame of the held-out sequence
    0006R0: what the shipped-weights floor tests assert on."""
    from lightseg_cli.data.labelled import load_samples
    from lightseg_cli.data.splits import split_by_sequence, write_list
    from lightseg_cli.evaluate import evaluate

    camvid = need_shared("data", "camvid")
    val = load_samples(camvid / "val.txt")[::20]
    _, held = split_by_sequence(load_samples(camvid / "train.txt"), ["0006R0"])
    return (evaluate(seg, write_list(val, tmp_path / "val.txt")).miou,
            evaluate(seg, write_list(held[::20], tmp_path / "held.txt")).miou)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own empty user cache; weights come from ../shared when present."""
    cache = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("LIGHTSEG_PLAIN", "1")
    monkeypatch.delenv("LIGHTSEG_DEBUG", raising=False)
    if (SHARED / "weights").is_dir():
        monkeypatch.setenv("LIGHTSEG_WEIGHTS", str(SHARED / "weights"))
    else:
        monkeypatch.delenv("LIGHTSEG_WEIGHTS", raising=False)


@pytest.fixture
def shared_weights() -> Path:
    return need_shared("weights")


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    def json(self) -> dict:
        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run ``lightseg ARGS`` in this process; returns exit code, stdout and stderr."""
    from lightseg_cli.cli.app import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)

    return run


def lightseg_cmd() -> list[str]:
    return [sys.executable, "-m", "lightseg_cli"]


def run_cli_process(*args: str, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    """Run ``lightseg`` as a real subprocess (for signals, stdin and exit codes)."""
    return subprocess.run(lightseg_cmd() + [str(a) for a in args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **kw.pop("env", {})}, **kw)


def make_video(path: Path, frames: int = 30, size: tuple[int, int] = (160, 96), fps: Fraction = Fraction(25),
               codec: str = "libx264", fmt: str | None = None) -> Path:
    """A real H.264 video of moving colour bands (PyAV), so every frame differs."""
    w, h = size
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            s.options = {"preset": "ultrafast", "g": "10"}
        ys, xs = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = ((xs + 4 * i) % w * 255 // w).astype(np.uint8)
            img[..., 1] = (ys * 255 // h).astype(np.uint8)
            img[..., 2] = 255 * ((xs // 16 + ys // 16 + i) % 2)
            vf = av.VideoFrame.from_ndarray(img, format="rgb24")
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def make_image(path: Path, size: tuple[int, int] = (160, 120), seed: int = 0) -> Path:
    """A real image file (format from the suffix): a street-like scene of flat regions with noise."""
    w, h = size
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.uint8)
    img[: h // 3] = (70, 130, 180)  # sky
    img[h // 3 : 2 * h // 3] = (110, 100, 90)  # buildings
    img[2 * h // 3 :] = (96, 96, 100)  # road
    img[h // 2 : 5 * h // 6, w // 3 : w // 2] = (200, 30, 30)  # a car
    noisy = np.clip(img.astype(np.int16) + rng.integers(-12, 13, img.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(noisy, cv2.COLOR_RGB2BGR))
    assert ok
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.tobytes())
    return path


@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4")


def count_frames(path: Path) -> tuple[int, Fraction, int, int]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        n = sum(1 for _ in c.decode(s))
        return n, Fraction(s.average_rate), s.width, s.height


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _socket_inode(port: int, proto: str) -> int | None:
    """The inode of the socket bound to ``port`` (UDP) or listening on it (TCP), from /proc/net."""
    for table in (f"/proc/net/{proto}", f"/proc/net/{proto}6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            f = row.split()
            if int(f[1].rsplit(":", 1)[1], 16) == port and (proto == "udp" or f[3] == "0A"):
                return int(f[9])
    return None


def wait_for_receiver(proc: subprocess.Popen, port: int, proto: str, other_than: int | None = None,
                      timeout: float = 120) -> int | None:
    """Block until ``proc`` has bound ``port`` (UDP) or listens on it (TCP) with a socket other than
    ``other_than`` (a reconnect opens a new one); returns its inode. A sender started before that
    loses its datagrams or is refused, which a loaded machine makes likely: lightseg loads torch and a
    model first. Without /proc (not Linux) it waits a fixed few seconds."""
    if not Path(f"/proc/net/{proto}").exists():
        time.sleep(5.0)
        return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = _socket_inode(port, proto)
        if inode is not None and inode != other_than:
            return inode
        if proc.poll() is not None:
            raise AssertionError(f"lightseg exited ({proc.returncode}) before opening port {port}")
        time.sleep(0.02)
    raise AssertionError(f"lightseg did not open {proto} port {port} within {timeout:g}s")


def generated_camvid(folder: Path, n: int) -> Path:
    """``n`` generated street scenes (conftest.make_image) with their CamVid labels, as a list file."""
    folder.mkdir()
    lines = []
    for i in range(n):
        img = make_image(folder / f"{i}.png", size=(480, 360), seed=i)
        labels = np.full((360, 480), 3, np.uint8)  # road
        labels[:120], labels[120:240] = 0, 1  # sky, building
        labels[180:300, 160:240] = 8  # car
        cv2.imwrite(str(folder / f"{i}_L.png"), labels)
        lines.append(f"{img} {folder / f'{i}_L.png'}")
    (folder / "list.txt").write_text("\n".join(lines))
    return folder / "list.txt"
