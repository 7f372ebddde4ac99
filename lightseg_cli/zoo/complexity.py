"""Parameter count and GFLOPs of zoo models, measured on the meta device (no memory, no weights).

GFLOPs follow the papers' convention: multiply-accumulates (one per MAC), at the native input
size, batch 1. Results are cached in the user cache, keyed by lightseg version and model name.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from .._version import __version__
from ..io import atomic
from ..io.cache import cache_dir
from .pretrained import ModelCfg
from .registry import build_model


def _cache_file() -> Path:
    return cache_dir("complexity.json")


def measure(cfg: ModelCfg, size: tuple[int, int] | None = None) -> tuple[int, float]:
    """(parameters, GFLOPs as multiply-accumulates) at ``size`` (default the native size)."""
    w, h = size or cfg.input_size
    with torch.device("meta"):
        model = build_model(cfg).eval()
        x = torch.empty(1, 3, h, w)
    params = sum(p.numel() for p in model.parameters())
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return params, counter.get_total_flops() / 2 / 1e9


def complexity(cfgs: list[ModelCfg]) -> dict[str, tuple[int, float]]:
    """Cached :func:`measure` for several models at their native sizes."""
    path = _cache_file()
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if cache.get("version") != __version__:
        cache = {"version": __version__, "models": {}}
    rows = cache["models"]
    changed = False
    for cfg in cfgs:
        key = f"{cfg.name}@{cfg.input_size[0]}x{cfg.input_size[1]}"
        if key not in rows:
            rows[key] = list(measure(cfg))
            changed = True
    if changed:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_text(path, json.dumps(cache))
        except OSError:
            pass  # a read-only home only costs recomputation
    return {c.name: tuple(rows[f"{c.name}@{c.input_size[0]}x{c.input_size[1]}"]) for c in cfgs}  # type: ignore[misc]
