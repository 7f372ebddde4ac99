"""mIoU of a model on the CamVid val *video* (H.264, crf 18) vs on the val images.

Runs `lightseg run VIDEO --save-masks` and `lightseg eval --data val.txt`, then scores the masks of
frame i against the label of the i-th line of val.txt.

    python benchmarks/camvid_video_miou.py --model espnet-camvid
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from lightseg_cli.metrics import ConfusionMatrix
from lightseg_cli.zoo import get_cfg


def main() -> None:
    shared = Path(__file__).resolve().parents[2] / "shared"
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="espnet-camvid")
    ap.add_argument("--shared", default=str(shared))
    a = ap.parse_args()
    shared = Path(a.shared)
    video, camvid = shared / "video" / "camvid_val_0016E5.mp4", shared / "data" / "camvid"
    cfg = get_cfg(a.model)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "lightseg_cli", "run", str(video), "--model", a.model, "--save-masks",
                        "--out", tmp, "--exist-ok", "-q"], check=True)
        cm = ConfusionMatrix(cfg.dataset.scored, cfg.num_classes)
        pairs = [ln.split() for ln in (camvid / "val.txt").read_text().splitlines() if ln.strip()]
        for i, (_, lab) in enumerate(pairs):
            mask = cv2.imread(str(Path(tmp) / "masks" / f"{video.stem}_{i:06d}.png"), cv2.IMREAD_UNCHANGED)
            cm.update(mask, cv2.imread(str(camvid / lab), cv2.IMREAD_UNCHANGED))
    ev = subprocess.run([sys.executable, "-m", "lightseg_cli", "eval", "--model", a.model, "--data",
                         str(camvid / "val.txt"), "--json"], check=True, capture_output=True, text=True)
    images = json.loads(ev.stdout)["miou"]
    print(json.dumps({"model": a.model, "video_miou": round(cm.miou() * 100, 2),
                      "image_miou": round(images * 100, 2),
                      "difference": round((images - cm.miou()) * 100, 2)}, indent=1))


if __name__ == "__main__":
    main()
