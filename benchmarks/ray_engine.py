"""``lightseg run --engine ray`` against the local engine on the same folder of images.

The first ``--limit`` CamVid val images (default all 101, from ``val.txt``) are copied to a
temporary folder (``--copies K`` times each, for a longer run); then, ``--repeat`` rounds with the
order alternating, ``lightseg run FOLDER`` runs as a real command with the local engine and with
``--engine ray --workers N`` (a new local Ray instance per run, or the cluster of ``--address``,
e.g. one started once with ``ray start --head``). Reported, as medians over the rounds:

* processing rate: images / the summary's ``seconds`` (local: from the pipeline's start to the
  last mask; ray: from the first unit's start on a worker to the last unit's end), i.e. without
  loading the model, starting Ray or starting the workers. On 101 images that span still holds
  the workers' staggered first units and the last unit, when some workers have nothing left:
  ``--copies 3`` comes closer to what a long run converges to;
* wall rate: images / the whole command's wall time, startup included;
* ray / local for both (the goal: processing ratio >= 0.8), and the rate of one ray worker:
  images / the seconds the workers spent labelling, all together (the sizing figure for a
  cluster: a cluster of N such workers labels about N times as fast).

    python benchmarks/ray_engine.py [--model lpsnet-m] [--size 480x360] [--workers 2] [--limit 101] \
        [--copies 1] [--repeat 3] [--address auto] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(os.environ.get("LIGHTSEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))


def images(folder: Path, limit: int | None, copies: int) -> int:
    """The first ``limit`` val images, ``copies`` times each (copies after the first named ``<stem>_<k>``)."""
    camvid = SHARED / "data" / "camvid"
    lines = (camvid / "val.txt").read_text().splitlines()[:limit]
    for line in lines:
        src = camvid / line.split()[0]
        for k in range(copies):
            shutil.copy(src, folder / (src.name if k == 0 else f"{src.stem}_{k}{src.suffix}"))
    return len(lines) * copies


def run(folder: Path, out: Path, engine_args: list[str], model_args: list[str]) -> dict:
    """One ``lightseg run`` command: its summary, and its wall seconds as ``wall``."""
    cmd = [sys.executable, "-m", "lightseg_cli", "run", str(folder), *model_args, "--out", str(out), "--json",
           "--quiet", *engine_args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stderr}")
    shutil.rmtree(out)
    return {**json.loads(done.stdout), "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--size", default=None, help="network input WxH (default: the profile's)")
    ap.add_argument("--workers", type=int, default=2, help="Ray workers")
    ap.add_argument("--limit", type=int, default=None, help="the first N val images (default: all)")
    ap.add_argument("--copies", type=int, default=1,
                    help="copies of each image: a longer run, where starting the workers and the last "
                         "unit weigh less (a cluster's steady state)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds, the engines' order alternating; medians")
    ap.add_argument("--address", default=None, help="a running Ray cluster to use (default: a new local instance)")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout instead of lines")
    a = ap.parse_args()
    model_args = ["--model", a.model, *(["--size", a.size] if a.size else [])]
    ray_args = ["--engine", "ray", "--workers", str(a.workers), *(["--address", a.address] if a.address else [])]
    engines = {"local": [], "ray": ray_args}
    runs: dict[str, list[dict]] = {e: [] for e in engines}
    with tempfile.TemporaryDirectory(prefix="lightseg-ray-bench-") as tmp:
        folder = Path(tmp) / "val"
        folder.mkdir()
        n = images(folder, a.limit, a.copies)
        for r in range(a.repeat):
            for e in (list(engines) if r % 2 == 0 else list(engines)[::-1]):
                s = run(folder, Path(tmp) / f"out-{e}-{r}", engines[e], model_args)
                if s["frames"] != n:
                    raise SystemExit(f"{e}: {s['frames']} of {n} images labelled")
                runs[e].append(s)
                print(f"round {r + 1} {e}: {n / s['seconds']:.2f} images/s processing, {n / s['wall']:.2f} "
                      f"images/s wall ({s['wall']:.1f} s)", file=sys.stderr)
    rate = {e: statistics.median(n / s["seconds"] for s in runs[e]) for e in engines}
    wall = {e: statistics.median(n / s["wall"] for s in runs[e]) for e in engines}
    per_worker = statistics.median(n / s["layout"]["worker_seconds"] for s in runs["ray"])
    first = runs["ray"][0]
    report = {
        "images": n, "copies": a.copies, "model": first["model"], "size": first["size"], "backend": first["backend"],
        "device": first["device"], "workers": a.workers, "repeat": a.repeat, "address": a.address or "local",
        "local_images_per_s": round(rate["local"], 3), "ray_images_per_s": round(rate["ray"], 3),
        "ray_per_worker_images_per_s": round(per_worker, 3),
        "ratio_processing": round(rate["ray"] / rate["local"], 3),
        "local_wall_images_per_s": round(wall["local"], 3), "ray_wall_images_per_s": round(wall["ray"], 3),
        "ratio_wall": round(wall["ray"] / wall["local"], 3),
        "local_layout": runs["local"][0]["layout"], "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # a busy machine slows both engines, unevenly
    }
    text = [
        f"{n} CamVid val images ({a.copies} cop{'y' if a.copies == 1 else 'ies'} each), {report['model']} at "
        f"{report['size'][0]}x{report['size'][1]} ({report['backend']}, "
        f"{report['device']}), {a.repeat} round(s), medians; load average {report['load_average'][0]}",
        f"processing: local {rate['local']:.2f} images/s, ray x{a.workers} {rate['ray']:.2f} images/s -> ray/local "
        f"{report['ratio_processing']:.2f} (goal >= 0.8); one ray worker {per_worker:.2f} images/s",
        f"wall (startup included): local {wall['local']:.2f} images/s, ray {wall['ray']:.2f} images/s -> ray/local "
        f"{report['ratio_wall']:.2f}",
    ]
    print(json.dumps(report, indent=1) if a.json else "\n".join(text))


if __name__ == "__main__":
    main()
