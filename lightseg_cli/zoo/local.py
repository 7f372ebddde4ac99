"""Model lookup by name or file: ``get_cfg`` takes a zoo name or a checkpoint written by
``lightseg train`` (``--model runs/x/best.pth``).

The checkpoint's ``meta`` block names the base architecture and the label space; the file is
loaded with ``weights_only=True`` (tensors and plain data only, nothing executed).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..errors import WeightsError
from .pretrained import Dataset, ModelCfg
from .registry import zoo_entry


def get_cfg(name: str) -> ModelCfg:
    """The zoo entry for a (possibly short) model name, or the config of a trained checkpoint file."""
    if is_checkpoint_path(name):
        return cfg_from_checkpoint(name)
    return zoo_entry(name)


def is_checkpoint_path(name: str) -> bool:
    return name.endswith((".pth", ".pt")) or "/" in name or "\\\\" in name


def cfg_from_checkpoint(path: str | Path) -> ModelCfg:
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{p}: no such checkpoint file")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user-facing problem
        raise WeightsError(f"{p}: not a lightseg checkpoint ({type(e).__name__})") from None
    meta = ck.get("meta") if isinstance(ck, dict) else None
    if not meta or "base" not in meta:
        raise WeightsError(f"{p}: no 'meta' block; only checkpoints written by `lightseg train` can be used")
    base = get_cfg(meta["base"])
    ds = Dataset(
        name=meta.get("dataset", base.dataset.name),
        classes=tuple(meta["classes"]),
        palette=tuple(tuple(c) for c in meta["palette"]),  # type: ignore[misc]
        scored=int(meta.get("scored", len(meta["classes"]))),
    )
    size = tuple(meta.get("size") or base.input_size)
    return replace(base, name=p.stem if p.stem not in ("best", "last") else f"{p.parent.name}/{p.stem}",
                   dataset=ds, input_size=size, weights=str(p.resolve()),  # type: ignore[arg-type]
                   arch_args=dict(meta.get("arch_args", base.arch_args)), class_map=meta.get("class_map"))
