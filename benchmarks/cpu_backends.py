"""Per-frame inference time (network + arg-max, labels at the network size) of each CPU backend
vs the plain eager PyTorch path, in one run.

The plain path is what lightseg would do without its optimisations: eager PyTorch, BN not folded,
NCHW, glibc's default allocator (the ``cpu-plain`` profile's). Each backend is timed in its own
child process (the allocator setting is per process), interleaved ``--rounds`` times; medians are
reported, with the fraction of labels each backend shares with the plain path on a real frame.

    python benchmarks/cpu_backends.py --model espnetv2-s2.0-cityscapes --size 1024x512 \
        --video ../shared/video/solidWhiteRight.mp4 --rounds 3 --iters 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, sys, time, numpy as np, torch, av
backend, model, w, h, video, iters, out = sys.argv[1:8]
w, h, iters = int(w), int(h), int(iters)
from lightseg_cli import profiles
from lightseg_cli.tuning import tune_allocator
tune_allocator(profiles.load("cpu-plain" if backend == "plain" else "cpu").allocator)
from lightseg_cli.infer.segmenter import Segmenter
seg = Segmenter(model, size=(w, h), backend="torch-plain" if backend == "plain" else backend)
with av.open(video) as c:
    for i, f in enumerate(c.decode(video=0)):
        if i == 50:
            frame = f.to_ndarray(format="rgb24")
            break
x = seg.preprocess(seg.to_device([frame]))
times = []
with torch.inference_mode():
    for i in range(iters + 2):
        t0 = time.perf_counter()
        labels = seg.labels(seg.infer(x))  # network + arg-max: labels at the network size
        if i >= 2:
            times.append(time.perf_counter() - t0)
    labels = labels[0].numpy()
np.save(out, labels)
print(json.dumps({"backend": seg.backend.name, "ms": [t * 1000 for t in times]}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="espnetv2-s2.0-cityscapes")
    ap.add_argument("--size", default="1024x512")
    ap.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared/video/solidWhiteRight.mp4"))
    ap.add_argument("--backends", default="plain,torch,onnxruntime")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    w, h = a.size.split("x")
    import numpy as np

    backends = a.backends.split(",")
    per: dict[str, list[float]] = {b: [] for b in backends}
    with tempfile.TemporaryDirectory() as tmp:
        labels = {}
        for r in range(a.rounds):
            for b in backends:
                out = Path(tmp) / f"{b}.npy"
                p = subprocess.run([sys.executable, "-c", CHILD, b, a.model, w, h, a.video, str(a.iters), str(out)],
                                   capture_output=True, text=True, check=True)
                res = json.loads(p.stdout.strip().splitlines()[-1])
                per[b].append(statistics.median(res["ms"]))
                labels[b] = np.load(out)
                print(f"round {r + 1} {b:12s} {per[b][-1]:8.1f} ms", file=sys.stderr)
        base = statistics.median(per["plain"]) if "plain" in per else None
        report = {"model": a.model, "size": a.size, "rounds": a.rounds, "iters": a.iters, "backends": {}}
        for b in backends:
            med = statistics.median(per[b])
            report["backends"][b] = {
                "ms_median": round(med, 1),
                "ms_per_round": [round(v, 1) for v in per[b]],
                "speedup_vs_plain": round(base / med, 3) if base else None,
                "labels_equal_to_plain": float((labels[b] == labels["plain"]).mean()) if "plain" in labels else None,
            }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
