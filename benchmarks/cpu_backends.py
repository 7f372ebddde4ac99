"""Per-frame inference time (network + arg-max, labels at the network size) of each CPU backend and
precision vs the plain eager PyTorch path, in one run, with label agreement and mIoU.

The plain path is what lightseg would do without its optimisations: eager PyTorch, BN not folded,
NCHW, glibc's default allocator (the ``cpu-plain`` profile's). Each variant is timed in its own
child process (the allocator setting is per process), interleaved ``--repeat`` times; medians are
reported, with the fraction of labels each variant shares with the plain path on a real frame and,
in the last round, its mIoU on a labelled list (``--eval``; Cityscapes models are scored on CamVid
through ``--classes-as camvid``). ``openvino-int8`` is first quantized here (``lightseg quantize``'s
code, ``--calib-images`` images of ``--calib``) into the user cache. The ``[backends]`` table of
``pipelines/cpu.toml`` is filled from these figures: per model family, the fastest fp32 backend.

    python benchmarks/cpu_backends.py --model lpsnet-m --size 1024x512 --repeat 5 --json
    python benchmarks/cpu_backends.py --model espnetv2-s2.0-cityscapes --classes-as camvid --size 1024x512 --repeat 5
    python benchmarks/cpu_backends.py --model lpsnet-s --size 480x360 --repeat 1 --iters 3 --eval none  # a smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
# variant -> (backend, precision)
VARIANTS = {"plain": ("torch-plain", "fp32"), "torch": ("torch", "fp32"), "onnxruntime": ("onnxruntime", "fp32"),
            "openvino": ("openvino", "fp32"), "openvino-int8": ("openvino", "int8")}


def _cfg(model: str, classes_as: str | None):  # type: ignore[no-untyped-def]
    from lightseg_cli.zoo import get_cfg
    from lightseg_cli.zoo.classmap import classes_as as map_classes

    cfg = get_cfg(model)
    return map_classes(cfg, classes_as) if classes_as else cfg


def child(a: argparse.Namespace) -> None:
    """One variant in this process: times, labels of the frame (saved), mIoU if asked; JSON on stdout."""
    import av
    import numpy as np
    import torch

    from lightseg_cli import profiles
    from lightseg_cli.tuning import tune_allocator

    tune_allocator(profiles.load("cpu-plain" if a.child == "plain" else "cpu").allocator)
    from lightseg_cli.evaluate import evaluate
    from lightseg_cli.infer.segmenter import Segmenter

    backend, precision = VARIANTS[a.child]
    w, h = map(int, a.size.split("x"))
    seg = Segmenter(_cfg(a.model, a.classes_as), size=(w, h), backend=backend, precision=precision)
    with av.open(a.video) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 50).to_ndarray(format="rgb24")
    x = seg.preprocess(seg.to_device([frame]))
    times = []
    with torch.inference_mode():
        for i in range(a.iters + 2):
            t0 = time.perf_counter()
            labels = seg.labels(seg.infer(x))  # network + arg-max: labels at the network size
            if i >= 2:
                times.append(time.perf_counter() - t0)
    np.save(a.labels_out, labels[0].numpy())
    miou = evaluate(seg, a.eval).miou if a.eval else None
    print(json.dumps({"backend": seg.backend.name, "precision": seg.precision, "ms": [t * 1000 for t in times],
                      "miou": miou}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--size", default="1024x512")
    ap.add_argument("--classes-as", default=None, help="score a model through a class map (camvid for Cityscapes)")
    ap.add_argument("--video", default=str(SHARED / "video/solidWhiteRight.mp4"))
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, of {', '.join(VARIANTS)}")
    ap.add_argument("--repeat", "--rounds", dest="repeat", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--iters", type=int, default=10, help="timed inferences per round (after 2 warm-up ones)")
    ap.add_argument("--calib", default=str(SHARED / "data/camvid/train.txt"), help="int8 calibration images")
    ap.add_argument("--calib-images", type=int, default=16)
    ap.add_argument("--eval", default=str(SHARED / "data/camvid/val.txt"), help="labelled list for mIoU, or none")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    ap.add_argument("--labels-out", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.eval = None if a.eval in ("", "none") else a.eval
    if a.child:
        child(a)
        return
    import numpy as np

    variants = a.variants.split(",")
    calibration = None
    if "openvino-int8" in variants:
        from lightseg_cli.infer.quantize import quantize

        w, h = map(int, a.size.split("x"))
        q = quantize(_cfg(a.model, a.classes_as), Path(a.calib), (w, h), images=a.calib_images)
        calibration = {"calib": a.calib, "images": len(q.images), "seconds": round(q.seconds, 1)}
        print(f"quantized on {len(q.images)} images of {a.calib} in {q.seconds:.1f} s", file=sys.stderr)
    per: dict[str, list[float]] = {v: [] for v in variants}
    ran: dict[str, dict] = {}
    labels = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.repeat):
            last = r == a.repeat - 1
            for v in variants if r % 2 == 0 else variants[::-1]:
                out = Path(tmp) / f"{v}.npy"
                cmd = [sys.executable, __file__, "--child", v, "--model", a.model, "--size", a.size, "--video", a.video,
                       "--iters", str(a.iters), "--labels-out", str(out), "--eval", (last and a.eval) or "none"]
                if a.classes_as:
                    cmd += ["--classes-as", a.classes_as]
                p = subprocess.run(cmd, capture_output=True, text=True)
                if p.returncode:
                    sys.exit(f"{v}: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
                res = json.loads(p.stdout.strip().splitlines()[-1])
                per[v].append(statistics.median(res["ms"]))
                ran[v] = {**ran.get(v, {}), **{k: res[k] for k in ("backend", "precision")},
                          **({"miou": res["miou"]} if last else {})}
                labels[v] = np.load(out)
                print(f"round {r + 1} {v:14s} {per[v][-1]:8.1f} ms", file=sys.stderr)
    med = {v: statistics.median(per[v]) for v in variants}
    report = {"model": a.model, "classes_as": a.classes_as, "size": a.size, "rounds": a.repeat, "iters": a.iters,
              "eval": a.eval, "calibration": calibration, "variants": {}}
    for v in variants:
        report["variants"][v] = {
            **ran[v],
            "ms_median": round(med[v], 1),
            "ms_per_round": [round(t, 1) for t in per[v]],
            "speedup_vs_plain": round(med["plain"] / med[v], 3) if "plain" in med else None,
            "speedup_vs_torch": round(med["torch"] / med[v], 3) if "torch" in med else None,
            "labels_equal_to_plain": float((labels[v] == labels["plain"]).mean()) if "plain" in labels else None,
        }
    if a.json:
        print(json.dumps(report, indent=1))
        return
    print(f"{a.model} at {a.size}, medians of {a.repeat} round(s) x {a.iters} inferences (network + arg-max)")
    print(f"{'variant':14s} {'ms':>8s} {'vs plain':>9s} {'vs torch':>9s} {'= plain':>8s} {'mIoU':>6s}")
    cell = lambda v, fmt, width: f"{'-':>{width}s}" if v is None else format(v, fmt)  # noqa: E731
    for v, d in report["variants"].items():
        pct = lambda k: None if d.get(k) is None else d[k] * 100  # noqa: E731, B023
        print(f"{v:14s} {d['ms_median']:8.1f} {cell(d['speedup_vs_plain'], '8.2f', 8)}x "
              f"{cell(d['speedup_vs_torch'], '8.2f', 8)}x {cell(pct('labels_equal_to_plain'), '7.2f', 7)}% "
              f"{cell(pct('miou'), '6.2f', 6)}")


if __name__ == "__main__":
    main()
