"""Resident memory over a long run: a 10,000-frame video through `lightseg run`, RSS sampled
from /proc every second. Reports RSS after warm-up, at the end, and the growth.

    python benchmarks/rss_long_run.py --frames 10000 --model espnetv2-s0.5-cityscapes --size 256x128
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def make_video(path: Path, frames: int, size: tuple[int, int]) -> None:
    w, h = size
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=Fraction(25))
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast"}
        ys, xs = np.mgrid[0:h, 0:w]
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = (xs + 3 * i) % 256
            img[..., 1] = (ys + i) % 256
            img[..., 2] = 255 * ((xs // 20 + ys // 20 + i // 5) % 2)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--model", default="espnetv2-s0.5-cityscapes")
    ap.add_argument("--size", default="256x128")
    ap.add_argument("--video-size", default="320x192")
    ap.add_argument("--warmup", type=float, default=30.0, help="seconds before the baseline sample")
    a = ap.parse_args()
    vw, vh = map(int, a.video_size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "long.mp4"
        print(f"writing a {a.frames}-frame video...", file=sys.stderr)
        make_video(video, a.frames, (vw, vh))
        cmd = [sys.executable, "-m", "lightseg_cli", "run", str(video), "--model", a.model, "--size", a.size,
               "--save-masks", "--stats", "--out", str(Path(tmp) / "out"), "--json", "-q"]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        samples = []
        while proc.poll() is None:
            v = rss_mb(proc.pid)
            if v is not None:
                samples.append((time.monotonic() - t0, v))
            time.sleep(1.0)
        summary = json.loads(proc.stdout.read())
    after = [v for t, v in samples if t >= a.warmup]
    base = after[0] if after else samples[0][1]
    report = {
        "frames": summary["frames"],
        "seconds": summary["seconds"],
        "fps": summary["fps"],
        "rss_mb_after_warmup": round(base, 1),
        "rss_mb_end": round(samples[-1][1], 1),
        "rss_mb_max": round(max(v for _, v in samples), 1),
        "growth_mb_after_warmup": round(max(after) - base, 1) if after else None,
        "samples_every_10s": [(round(t), round(v, 1)) for t, v in samples[::10]],
        "command": " ".join(cmd[1:]),
    }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
