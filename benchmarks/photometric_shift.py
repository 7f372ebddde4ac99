"""Is it the look of an unseen street that a student loses on? mIoU of a model on labelled sets with
each image's exposure and colour corrected at test time, beside the images as they are.

Corrections: ``gamma100`` (a gamma that brings the image's mean grey level to 100, about the
training streets'), ``gamma100+sat2`` (that, then the HSV saturation doubled), ``greyworld`` (each
channel scaled to the image's mean grey). Sequence 0006R0 of CamVid is brighter (mean grey 139
against 100 and 59) and greyer (saturation 21 against 39 and 55) than the two training streets of
the leave-one-sequence-out check; if that look were the loss, correcting it would recover mIoU.

    python benchmarks/photometric_shift.py --model runs/ghost-loso-kd/best.pth \
        --data ../shared/data/camvid/val.txt --data runs/loso-0006R0/holdout.txt [--json]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable

import cv2
import numpy as np
import torch

from lightseg_cli.data.labelled import load_samples, read_label
from lightseg_cli.infer.build import build_segmenter
from lightseg_cli.io.images import read_rgb
from lightseg_cli.metrics import ConfusionMatrix


def gamma_to(img: np.ndarray, target: float = 100.0) -> np.ndarray:
    grey = max(float(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).mean()), 1.0)
    gamma = np.log(target / 255.0) / np.log(grey / 255.0)
    return cv2.LUT(img, np.clip(255.0 * (np.arange(256) / 255.0) ** gamma, 0, 255).astype(np.uint8))


def saturate(img: np.ndarray, k: float = 2.0) -> np.ndarray:
    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 1] = np.clip(hsv[..., 1] * k, 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2RGB)


def grey_world(img: np.ndarray) -> np.ndarray:
    f = img.astype(np.float32)
    mean = f.reshape(-1, 3).mean(0)
    return np.clip(f * (mean.mean() / np.maximum(mean, 1e-3)), 0, 255).astype(np.uint8)


CORRECTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "identity": lambda img: img,
    "gamma100": gamma_to,
    "gamma100+sat2": lambda img: saturate(gamma_to(img)),
    "greyworld": grey_world,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="zoo name or a checkpoint from lightseg train")
    ap.add_argument("--data", action="append", required=True, help="labelled list (repeatable)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seg, _ = build_segmenter(args.model, backend="torch")
    table: dict[str, dict[str, float]] = {}
    for data in args.data:
        pairs = [(read_rgb(s.image), read_label(s.label)) for s in load_samples(data)]
        for name, correct in CORRECTIONS.items():
            cm = ConfusionMatrix(seg.cfg.dataset.scored, seg.cfg.num_classes)
            for img, label in pairs:
                pred = seg([correct(img)])[0]
                if pred.shape != label.shape:
                    pred = cv2.resize(pred, (label.shape[1], label.shape[0]), interpolation=cv2.INTER_NEAREST_EXACT)
                cm.update(pred, label)
            table.setdefault(data, {})[name] = round(cm.miou() * 100, 2)
    if args.json:
        print(json.dumps({"model": args.model, "miou": table}, indent=1))
        return
    print(f"{'data':40s}" + "".join(f"{n:>15s}" for n in CORRECTIONS))
    for data, row in table.items():
        print(f"{data[-40:]:40s}" + "".join(f"{row[n]:15.2f}" for n in CORRECTIONS))


if __name__ == "__main__":
    main()
