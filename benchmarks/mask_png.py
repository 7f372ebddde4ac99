"""PNG settings for mask files: libpng's default adaptive filters vs the ones ``sinks/outputs.py`` uses.

Masks are written at the frame's size, so the CamVid val labels are scaled (nearest) to ``--size``
(default 960x540, the dashcam clip's frames), encoded with each setting ``--repeat`` times, and
checked to decode to the same labels. Reported per setting: median ms per mask and mean bytes.

    python benchmarks/mask_png.py [--size 960x540] [--limit 20] [--repeat 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from lightseg_cli.sinks.outputs import PNG_PARAMS

SHARED = Path(os.environ.get("LIGHTSEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SETTINGS = {"level 1, adaptive filters (before)": [cv2.IMWRITE_PNG_COMPRESSION, 1], "shipped": PNG_PARAMS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="960x540")
    ap.add_argument("--limit", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=10)
    a = ap.parse_args()
    w, h = (int(v) for v in a.size.split("x"))
    camvid = SHARED / "data" / "camvid"
    lines = (camvid / "val.txt").read_text().splitlines()[: a.limit]
    masks = [cv2.resize(cv2.imread(str(camvid / line.split()[1]), cv2.IMREAD_GRAYSCALE), (w, h),
                        interpolation=cv2.INTER_NEAREST) for line in lines]
    cv2.setNumThreads(1)
    times: dict[str, list[float]] = {k: [] for k in SETTINGS}
    sizes: dict[str, list[int]] = {k: [] for k in SETTINGS}
    for _ in range(a.repeat):
        for name, params in SETTINGS.items():  # interleaved
            for m in masks:
                t0 = time.perf_counter()
                ok, buf = cv2.imencode(".png", m, params)
                times[name].append(time.perf_counter() - t0)
                sizes[name].append(len(buf))
                assert ok and np.array_equal(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), m)
    print(f"{len(masks)} CamVid val label maps at {w}x{h}, {a.repeat} rounds, OpenCV {cv2.__version__}")
    for name in SETTINGS:
        print(f"{name}: {statistics.median(times[name]) * 1e3:.2f} ms per mask, "
              f"{statistics.mean(sizes[name]) / 1e3:.1f} kB")


if __name__ == "__main__":
    main()
