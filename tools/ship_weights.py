"""Ship a trained checkpoint as package weights: fp16 state dict + meta under weights/<family>/,
sha256 recorded in weights/manifest.json.

    python tools/ship_weights.py runs/lpsnet-m/best.pth lpsnet-m-camvid
    python tools/ship_weights.py runs/espnetv2-camvid/best.pth espnetv2-s2.0-camvid \
        --source "Cityscapes weights fine-tuned by lightseg on CamVid, see weights/README.md"

A checkpoint fits a zoo entry when it was trained as that entry, or as the same network in the
same label space (e.g. ``espnetv2-s2.0-cityscapes --classes-as camvid`` for ``espnetv2-s2.0-camvid``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from lightseg_cli.io import atomic
from lightseg_cli.zoo import get_cfg

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("model", help="zoo name the weights are for, e.g. lpsnet-m-camvid")
    ap.add_argument("--source", default="trained by lightseg on CamVid train, see weights/README.md",
                    help="provenance line for the manifest")
    a = ap.parse_args()
    cfg = get_cfg(a.model)
    ck = torch.load(a.checkpoint, map_location="cpu", weights_only=True)
    sd = ck.get("state_dict") or ck["model"]
    meta = dict(ck.get("meta") or {})
    trained = get_cfg(meta["base"]) if meta.get("base") else None
    same_net = trained is not None and (trained.arch, trained.arch_args) == (cfg.arch, cfg.arch_args)
    same_labels = tuple(meta.get("classes", ())) == cfg.dataset.classes and meta.get("class_map") == cfg.class_map
    if meta.get("base") != cfg.name and not (same_net and same_labels):
        raise SystemExit(f"{a.checkpoint} was trained as {meta.get('base')} (class map {meta.get('class_map')}), "
                         f"which does not fit {cfg.name}")
    meta["trained_from"], meta["base"] = meta.get("base"), cfg.name
    half = {k: (v.half() if v.is_floating_point() and not k.endswith(("running_mean", "running_var")) else v)
            for k, v in sd.items()}
    dest = ROOT / "weights" / cfg.weights
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(dest) as tmp:
        torch.save({"state_dict": half, "meta": meta}, tmp)
    sha = hashlib.sha256(dest.read_bytes()).hexdigest()
    manifest_path = ROOT / "weights" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"][cfg.weights] = {"sha256": sha, "url": None, "license": "MIT (lightseg)",
                                      "source": a.source}
    atomic.write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({"file": str(dest), "bytes": dest.stat().st_size, "sha256": sha, "epoch": meta.get("epoch"),
                      "val_miou": meta.get("val_miou")}, indent=1))


if __name__ == "__main__":
    main()
