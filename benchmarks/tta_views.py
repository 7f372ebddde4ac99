"""What averaging a model over views buys: mIoU of the class probabilities averaged over input
scales and mirror images, for every combination of the given scales, with and without mirrors;
with several ``--model``, the same for their weighted ensemble as well.

The views are the ones ``lightseg train --teacher M --teacher-scales S --teacher-flip`` averages
for distillation targets (``train/distill.py``: each view's logits resized to the image, mirrored
back; an ensemble, ``--teacher A --teacher B --teacher-weights 3,1``, weights its members'
view-averaged probabilities); each view is computed once per image and every combination scored
from them. Scales are multiples of each model's own input size.

    python benchmarks/tta_views.py --model runs/espnetv2-s2.0-camvid-loso.pth \\
        [--model espnetv2-s2.0-cityscapes --weights 3,1] \\
        --data runs/loso-0006R0/holdout.txt --scales 0.75,1,1.25,1.5 [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json

import cv2
import numpy as np
import torch

from lightseg_cli.data.labelled import load_samples, read_label
from lightseg_cli.io.images import read_rgb
from lightseg_cli.metrics import ConfusionMatrix
from lightseg_cli.train.distill import Teacher, view_logits
from lightseg_cli.zoo.local import get_cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True,
                    help="repeat for an ensemble; the first is scored alone too")
    ap.add_argument("--weights", help="the ensemble's weights, one per --model (default: equal)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--scales", default="0.75,1,1.25")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    scales = [float(s) for s in a.scales.split(",")]
    weights = [float(w) for w in a.weights.split(",")] if a.weights else None
    teacher = Teacher(a.model, get_cfg(a.model[0]).dataset, torch.device("cpu"), scales, weights=weights)
    classes, members = teacher.classes, range(len(teacher.members))
    combos = [(sub, flip) for k in range(1, len(scales) + 1) for sub in itertools.combinations(scales, k)
              for flip in (False, True)]
    who = ["alone"] + (["ensemble"] if len(a.model) > 1 else [])
    cms = {(w, c): ConfusionMatrix(classes, teacher.first.cfg.num_classes) for w in who for c in combos}
    with torch.inference_mode():
        for sample in load_samples(a.data):
            img, label = read_rgb(sample.image), read_label(sample.label)
            probs = {(i, s, m): torch.softmax(view_logits(seg, img, classes, m), 1)[0]
                     for i in members for s, seg in zip(scales, teacher.views[i]) for m in (False, True)}
            for (w, (sub, flip)), cm in cms.items():
                views = [(s, m) for s in sub for m in ((False, True) if flip else (False,))]
                mean = [torch.stack([probs[i, s, m] for s, m in views]).mean(0) for i in members]
                p = mean[0] if w == "alone" else sum(wt * mi for mi, wt in zip(mean, teacher.weights))
                pred = p.argmax(0).numpy().astype(np.uint8)
                if pred.shape != label.shape:
                    pred = cv2.resize(pred, label.shape[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
                cm.update(pred, label)
    rows = [{"models": [teacher.first.name] if w == "alone" else [m.name for m in teacher.members],
             "weights": [1.0] if w == "alone" else teacher.weights, "scales": list(sub), "flip": flip,
             "sizes": [list(teacher.views[0][scales.index(s)].size) for s in sub],
             "miou": round(100 * cms[w, (sub, flip)].miou(), 2)} for w in who for sub, flip in combos]
    if a.json:
        print(json.dumps({"data": a.data, "views": rows}, indent=1))
        return
    for r in rows:
        who_ = " + ".join(f"{wt:.2g} {m}" for m, wt in zip(r["models"], r["weights"])) if len(r["models"]) > 1 \
            else r["models"][0]
        scales_ = ", ".join(f"{s:g}x" for s in r["scales"])
        print(f"{who_:60s} {scales_:24s} {'mirrored ' if r['flip'] else '         '} {r['miou']:.2f}")


if __name__ == "__main__":
    main()
