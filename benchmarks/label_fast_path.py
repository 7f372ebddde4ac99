"""How much the fast label path changes the labels.

The exact path resizes the C float logit maps bilinearly to the frame size and takes the arg-max
there. lightseg's path (``resized_argmax``) takes the arg-max at the network size and only
interpolates the pixels whose four source pixels disagree; the naive uint8 path (arg-max, then
nearest-neighbour resize of the labels) is shown for comparison. Real video frames; times and
agreement with the exact path.

    python benchmarks/label_fast_path.py --model espnetv2-s2.0-cityscapes --size 1024x512
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import av
import torch
import torch.nn.functional as F

from lightseg_cli.infer.segmenter import Segmenter
from lightseg_cli.tuning import tune_allocator


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="espnetv2-s2.0-cityscapes")
    ap.add_argument("--size", default="1024x512")
    ap.add_argument("--video", default=str(Path(__file__).resolve().parents[2] / "shared/video/solidWhiteRight.mp4"))
    ap.add_argument("--frames", type=int, default=10)
    a = ap.parse_args()
    tune_allocator()
    w, h = map(int, a.size.split("x"))
    seg = Segmenter(a.model, size=(w, h))
    if seg.logit_resize is not None:  # this comparison starts from full-size logits
        seg.logit_resize.deferred = False
        seg.logit_resize = None
    agree, fast_ms, exact_ms, naive_ms, naive_agree = [], [], [], [], []
    with av.open(a.video) as c, torch.inference_mode():
        for i, f in enumerate(c.decode(video=0)):
            if i % 20:
                continue
            img = f.to_ndarray(format="rgb24")
            t = seg.to_device([img])
            logits = seg.infer(seg.preprocess(t))
            t0 = time.perf_counter()
            fast = seg.labels(logits, img.shape[:2], exact=True)
            fast_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            exact = F.interpolate(logits, size=img.shape[:2], mode="bilinear", align_corners=False).argmax(1)
            exact_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            naive = F.interpolate(logits.argmax(1, keepdim=True).to(torch.uint8), size=img.shape[:2],
                                  mode="nearest-exact")[:, 0]
            naive_ms.append((time.perf_counter() - t0) * 1000)
            agree.append(float((fast.long() == exact).float().mean()))
            naive_agree.append(float((naive.long() == exact).float().mean()))
            if len(agree) >= a.frames:
                break
    print(json.dumps({"model": a.model, "size": a.size, "frames": len(agree),
                      "labels_equal_min": round(min(agree), 5), "labels_equal_mean": round(sum(agree) / len(agree), 5),
                      "fast_ms_median": round(statistics.median(fast_ms), 2),
                      "naive_nearest_equal_min": round(min(naive_agree), 5),
                      "naive_nearest_ms_median": round(statistics.median(naive_ms), 2),
                      "exact_ms_median": round(statistics.median(exact_ms), 2)}, indent=1))


if __name__ == "__main__":
    main()
