"""Per-frame cost of each postprocess step (low-res logits -> labels -> overlay), old vs new.

The "old" steps are the postprocess lightseg had before it was made proportional to the output,
written out here as they were: every frame pixel sampled from the low-res logits (one bilinear tap
per boundary pixel), colours by a 3-channel LUT on a merged label image, ``--classes`` by a masked
NumPy copy, the legend rendered per frame row by row. The "new" steps are the package's own
(``Segmenter.labels``, ``Overlay.annotate_np``); the last row compares the two ways a video's overlay
reaches the encoder (RGB, then OpenCV's I420 conversion; or ``Overlay.annotate_i420``). Both run
on the same real frames and logits, one thread each (torch and OpenCV), old and new interleaved
frame by frame; medians are reported.

Default: lpsnet-m (shipped) at 480x360 on the 960x540 frames of solidWhiteRight.mp4.

    python benchmarks/postprocess.py [--video ../shared/video/solidWhiteRight.mp4] [--repeat 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from lightseg_cli.draw import overlay as overlay_mod
from lightseg_cli.draw.overlay import Overlay, OverlayStyle
from lightseg_cli.infer.segmenter import Segmenter
from lightseg_cli.tuning import tune_allocator

# The old label path is written out once, in the test that checks the new one against it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.test_postprocess import old_labels  # noqa: E402


# ---- the old steps ----------------------------------------------------------------------------
def old_colorize(ov: Overlay, labels: np.ndarray) -> np.ndarray:
    return cv2.LUT(cv2.merge([labels, labels, labels]), np.ascontiguousarray(ov.lut.reshape(256, 1, 3)))


def old_keep_frame(ov: Overlay, out: np.ndarray, frame: np.ndarray, labels: np.ndarray) -> None:
    undrawn = np.where(ov.drawn, 0, 255).astype(np.uint8).reshape(256, 1)
    keep = cv2.LUT(labels, undrawn).astype(bool)
    np.copyto(out, frame, where=keep[..., None])


def old_legend(ov: Overlay, image: np.ndarray, labels: np.ndarray) -> None:
    counts = np.bincount(labels[::4, ::4].reshape(-1), minlength=256)
    total = max(int(counts.sum()), 1)
    present = [c for c in np.nonzero(counts)[0] if counts[c] / total >= 0.005 and ov.drawn[c] and c < len(ov.names)]
    h = max(14, min(28, image.shape[0] // 30))
    y = 4
    for c in present:
        row = overlay_mod._legend_row(ov.names[c], tuple(int(v) for v in ov.lut[c]), h)  # the old code cached
        rh, rw = row.shape[:2]  # rows per class too; rendering them is a one-off either way
        if y + rh > image.shape[0] or 4 + rw > image.shape[1]:
            break
        region = image[y : y + rh, 4 : 4 + rw]
        cv2.addWeighted(region, 0.25, row, 0.75, 0.0, dst=region)
        y += rh


# ---- timing -----------------------------------------------------------------------------------
def _frames(video: Path, n: int, every: int) -> list[np.ndarray]:
    out = []
    with av.open(str(video)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i % every == 0:
                out.append(f.to_ndarray(format="rgb24"))
                if len(out) == n:
                    break
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared/video/solidWhiteRight.mp4"))
    ap.add_argument("--model", default="lpsnet-m")
    ap.add_argument("--size", default="480x360", help="network input WxH")
    ap.add_argument("--frames", type=int, default=10, help="distinct frames (every 20th of the video)")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the frames; medians over all")
    ap.add_argument("--classes", default="road,car", help="the classes drawn in the --classes rows")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout instead of a table")
    a = ap.parse_args()
    tune_allocator()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    w, h = map(int, a.size.split("x"))
    seg = Segmenter(a.model, size=(w, h))
    if seg.logit_resize is None:
        raise SystemExit(f"{a.model}: its final resize is not skipped; the old label path does not apply")
    frames = _frames(Path(a.video), a.frames, 20)
    names = [c.lower() for c in seg.cfg.dataset.classes]
    ids = tuple(names.index(c) for c in a.classes.split(","))
    ov = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, OverlayStyle())
    ov_cls = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, OverlayStyle(classes=ids, legend=False))
    with torch.inference_mode():
        logits = [seg.infer(seg.preprocess(seg.to_device([f]))) for f in frames]
        labels = [old_labels(seg, lg, f.shape[:2])[0].numpy() for f, lg in zip(frames, logits)]
        for f, lg, lab in zip(frames, logits, labels):  # the same answer, or the timings mean nothing
            assert np.array_equal(seg.labels(lg, f.shape[:2])[0].numpy(), lab)
    colors = [ov.colorize_np(lab) for lab in labels]
    blended = [cv2.addWeighted(f, 0.5, c, 0.5, 0.0) for f, c in zip(frames, colors)]
    a_ = ov_cls.style.alpha

    def old_total(i: int) -> None:
        lab = old_labels(seg, logits[i], frames[i].shape[:2])[0].numpy()
        out = cv2.addWeighted(frames[i], 0.5, old_colorize(ov, lab), 0.5, 0.0)
        old_legend(ov, out, lab)

    def new_total(i: int) -> None:
        ov.annotate_np(frames[i], seg.labels(logits[i], frames[i].shape[:2])[0].numpy())

    # step -> (old, new); each takes a frame index
    steps: dict[str, tuple[Callable[[int], object], Callable[[int], object]]] = {
        "labels": (lambda i: old_labels(seg, logits[i], frames[i].shape[:2]),
                   lambda i: seg.labels(logits[i], frames[i].shape[:2])),
        "colours": (lambda i: old_colorize(ov, labels[i]), lambda i: ov.colorize_np(labels[i])),
        "blend": (lambda i: cv2.addWeighted(frames[i], 0.5, colors[i], 0.5, 0.0),
                  lambda i: cv2.addWeighted(frames[i], 0.5, colors[i], 0.5, 0.0)),
        "classes filter": (lambda i: old_keep_frame(ov_cls, blended[i].copy(), frames[i], labels[i]),
                           lambda i: cv2.copyTo(frames[i], cv2.LUT(labels[i], ov_cls._undrawn_cv),
                                                blended[i].copy())),
        "legend": (lambda i: old_legend(ov, blended[i].copy(), labels[i]),
                   lambda i: ov.draw_legend(blended[i].copy(), labels[i])),
        "overlay (colours+blend+legend)": (
            lambda i: old_legend(ov, cv2.addWeighted(frames[i], 0.5, old_colorize(ov, labels[i]), 0.5, 0.0),
                                 labels[i]),
            lambda i: ov.annotate_np(frames[i], labels[i])),
        "overlay with --classes": (
            lambda i: old_keep_frame(ov_cls, cv2.addWeighted(frames[i], 1 - a_, old_colorize(ov_cls, labels[i]), a_,
                                                             0.0), frames[i], labels[i]),
            lambda i: ov_cls.annotate_np(frames[i], labels[i])),
        "postprocess total": (old_total, new_total),
        # A video's overlay: drawn in RGB and converted for the encoder, or drawn on I420 planes.
        "overlay as the encoder's I420": (
            lambda i: cv2.cvtColor(ov.annotate_np(frames[i], labels[i]), cv2.COLOR_RGB2YUV_I420),
            lambda i: ov.annotate_i420(frames[i][None], labels[i][None])),
    }
    # The copies made for the in-place steps are timed on both sides alike.
    times: dict[str, dict[str, list[float]]] = {k: {"old": [], "new": []} for k in steps}
    with torch.inference_mode():
        for i in range(len(frames)):  # warm-up (and the legend cache, as in a run)
            for old, new in steps.values():
                old(i), new(i)
        for r in range(a.repeat):
            for i in range(len(frames)):
                for k, (old, new) in steps.items():
                    pair = [("old", old), ("new", new)] if (r + i) % 2 == 0 else [("new", new), ("old", old)]
                    for side, fn in pair:
                        t0 = time.perf_counter()
                        fn(i)
                        times[k][side].append((time.perf_counter() - t0) * 1000)
    rows = {k: {"old_ms": round(statistics.median(v["old"]), 3), "new_ms": round(statistics.median(v["new"]), 3)}
            for k, v in times.items()}
    for r_ in rows.values():
        r_["speedup"] = round(r_["old_ms"] / r_["new_ms"], 2) if r_["new_ms"] else None
    doc = {"model": seg.name, "size": [w, h], "frame": [frames[0].shape[1], frames[0].shape[0]],
           "frames": len(frames), "samples_per_step": a.repeat * len(frames), "threads": 1,
           "load_average": [round(x, 2) for x in os.getloadavg()], "steps_ms": rows}
    if a.json:
        print(json.dumps(doc, indent=1))
        return
    print(f"{seg.name} at {w}x{h} on {doc['frame'][0]}x{doc['frame'][1]} frames; median ms per frame, one thread, "
          f"{doc['samples_per_step']} samples per step (load average {doc['load_average'][0]})")
    print(f"{'step':32} {'old':>8} {'new':>8} {'old/new':>8}")
    for k, r_ in rows.items():
        print(f"{k:32} {r_['old_ms']:8.2f} {r_['new_ms']:8.2f} {r_['speedup']:8.2f}")


if __name__ == "__main__":
    main()
