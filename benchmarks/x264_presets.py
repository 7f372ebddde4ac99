"""What the overlay video's x264 preset and threads cost: encode time per frame and file size.

The overlay frames of a real run are made once (the video's frames through lightseg_cli's own
Segmenter and Overlay, default lpsnet-m at 480x360 on solidWhiteRight.mp4: 221 frames at
960x540), kept in memory, then encoded with each preset x threads by lightseg_cli's own
VideoWriter at the same CRF. The configurations are interleaved, ``--repeat`` rounds; medians of
wall and process CPU milliseconds per frame are reported (CPU time counts the encoder's own threads
and is the cost the encoder takes from inference on a busy machine), with the file size and the
PSNR of the decoded file against the frames given.

    python benchmarks/x264_presets.py [--video ../shared/video/solidWhiteRight.mp4] \
        [--presets ultrafast,superfast,veryfast] [--threads 0,1] [--crf 23] [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from lightseg_cli.draw.overlay import Overlay, OverlayStyle
from lightseg_cli.infer.segmenter import Segmenter
from lightseg_cli.sinks.video import VideoWriter
from lightseg_cli.tuning import tune_allocator


def overlay_frames(video: Path, model: str, size: tuple[int, int], limit: int | None) -> tuple[list[np.ndarray],
                                                                                                 Fraction]:
    seg = Segmenter(model, size=size)
    ov = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, OverlayStyle())
    out = []
    with av.open(str(video)) as c, torch.inference_mode():
        stream = c.streams.video[0]
        fps = stream.average_rate or Fraction(25)
        for f in c.decode(stream):
            img = f.to_ndarray(format="rgb24")
            t = seg.to_device([img])
            lab = seg.labels(seg.infer(seg.preprocess(t)), img.shape[:2])[0].numpy()
            out.append(ov.annotate_np(img, lab))
            if limit and len(out) == limit:
                break
    return out, Fraction(fps)


def psnr(path: Path, frames: list[np.ndarray]) -> float:
    errs = []
    with av.open(str(path)) as c:
        for f, ref in zip(c.decode(video=0), frames):
            got = f.to_ndarray(format="rgb24")
            h, w = got.shape[:2]
            errs.append(float(np.mean((got.astype(np.float32) - ref[:h, :w].astype(np.float32)) ** 2)))
    mse = statistics.mean(errs)
    return round(10 * np.log10(255.0**2 / mse), 2) if mse > 0 else float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared/video/solidWhiteRight.mp4"))
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--size", default="480x360", help="network input WxH")
    ap.add_argument("--frames", type=int, default=None, help="at most this many frames (default: all)")
    ap.add_argument("--presets", default="ultrafast,superfast,veryfast")
    ap.add_argument("--threads", default="0", help="comma-separated encoder threads to try (0 = FFmpeg's choice)")
    ap.add_argument("--crf", type=int, default=23)
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds; medians are reported")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout instead of a table")
    a = ap.parse_args()
    tune_allocator()
    w, h = map(int, a.size.split("x"))
    frames, fps = overlay_frames(Path(a.video), a.model, (w, h), a.frames)
    configs = [(p, int(t)) for p in a.presets.split(",") for t in a.threads.split(",")]
    wall: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    cpu: dict[tuple[str, int], list[float]] = {c: [] for c in configs}
    size: dict[tuple[str, int], int] = {}
    quality: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="lightseg-x264-") as tmp:
        for r in range(a.repeat):
            order = configs[r % len(configs):] + configs[: r % len(configs)]  # rotate: no config always first
            for preset, threads in order:
                path = Path(tmp) / f"{preset}-{threads}-{r}.mp4"
                t0, c0 = time.perf_counter(), time.process_time()
                with VideoWriter(path, (frames[0].shape[1], frames[0].shape[0]), fps, crf=a.crf, preset=preset,
                                 encoder_threads=threads) as vw:
                    for f in frames:
                        vw.write(f)
                wall[(preset, threads)].append((time.perf_counter() - t0) * 1000 / len(frames))
                cpu[(preset, threads)].append((time.process_time() - c0) * 1000 / len(frames))
                size[(preset, threads)] = path.stat().st_size
                if r == 0:
                    quality[(preset, threads)] = psnr(path, frames)
                path.unlink()
    seconds = len(frames) / float(fps)
    ref = size.get(("veryfast", configs[0][1])) or max(size.values())
    rows = [{"preset": p, "threads": t, "wall_ms_per_frame": round(statistics.median(wall[(p, t)]), 2),
             "cpu_ms_per_frame": round(statistics.median(cpu[(p, t)]), 2), "bytes": size[(p, t)],
             "kbit_s": round(size[(p, t)] * 8 / 1000 / seconds, 1), "size_vs_veryfast": round(size[(p, t)] / ref, 3),
             "psnr_db": quality[(p, t)]} for p, t in configs]
    doc = {"video": Path(a.video).name, "frames": len(frames), "frame": [frames[0].shape[1], frames[0].shape[0]],
           "model": a.model, "crf": a.crf, "repeat": a.repeat, "cores": os.cpu_count(),
           "load_average": [round(x, 2) for x in os.getloadavg()], "encodes": rows}
    if a.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"{doc['frames']} overlay frames {doc['frame'][0]}x{doc['frame'][1]}, crf {a.crf}, medians of {a.repeat} "
          f"(load average {doc['load_average'][0]})")
    print(f"{'preset':10} {'threads':>7} {'wall ms/f':>10} {'cpu ms/f':>9} {'bytes':>10} {'kbit/s':>8} "
          f"{'vs veryfast':>11} {'PSNR dB':>8}")
    for r_ in rows:
        print(f"{r_['preset']:10} {r_['threads']:7} {r_['wall_ms_per_frame']:10.2f} {r_['cpu_ms_per_frame']:9.2f} "
              f"{r_['bytes']:10} {r_['kbit_s']:8.1f} {r_['size_vs_veryfast']:11.3f} {r_['psnr_db']:8.2f}")


if __name__ == "__main__":
    main()
