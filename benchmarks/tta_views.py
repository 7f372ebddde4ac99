"""What averaging a model over views buys: mIoU of the class probabilities averaged over input
scales and mirror images, for every combination of the given scales, with and without mirrors.

The views are the ones ``lightseg train --teacher M --teacher-scales S --teacher-flip`` averages
for distillation targets (``train/distill.py``: each view's logits resized to the image, mirrored
back); each view is computed once per image and every combination scored from them. Scales are
multiples of the model's own input size.

    python benchmarks/tta_views.py --model runs/espnetv2-s2.0-camvid-loso.pth \\
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
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--scales", default="0.75,1,1.25")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    scales = [float(s) for s in a.scales.split(",")]
    teacher = Teacher(a.model, get_cfg(a.model).dataset, torch.device("cpu"), scales)
    first, classes = teacher.first, teacher.classes
    views = dict(zip(scales, teacher.views))
    combos = [(sub, flip) for k in range(1, len(scales) + 1) for sub in itertools.combinations(scales, k)
              for flip in (False, True)]
    cms = {c: ConfusionMatrix(classes, first.cfg.num_classes) for c in combos}
    with torch.inference_mode():
        for sample in load_samples(a.data):
            img, label = read_rgb(sample.image), read_label(sample.label)
            probs = {(s, m): torch.softmax(view_logits(seg, img, classes, m), 1)[0]
                     for s, seg in views.items() for m in (False, True)}
            for (sub, flip), cm in cms.items():
                p = torch.stack([probs[s, m] for s in sub for m in ((False, True) if flip else (False,))]).mean(0)
                pred = p.argmax(0).numpy().astype(np.uint8)
                if pred.shape != label.shape:
                    pred = cv2.resize(pred, label.shape[::-1], interpolation=cv2.INTER_NEAREST_EXACT)
                cm.update(pred, label)
    rows = [{"scales": list(sub), "sizes": [list(views[s].size) for s in sub], "flip": flip,
             "miou": round(100 * cms[sub, flip].miou(), 2)} for sub, flip in combos]
    if a.json:
        print(json.dumps({"model": first.name, "data": a.data, "views": rows}, indent=1))
        return
    for r in rows:
        sizes = ", ".join(f"{x}x{y}" for x, y in r["sizes"])
        print(f"{sizes:40s} {'mirrored ' if r['flip'] else '         '} {r['miou']:.2f}")


if __name__ == "__main__":
    main()
