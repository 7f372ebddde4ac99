"""Where files derived from a model live in the user cache: ONNX exports, OpenVINO int8 models.

A file's name carries a key of everything it is derived from (lightseg's and torch's versions, the
model's name, architecture arguments, input size and weights), so changing any of them makes a new
file instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .._version import __version__
from ..io.cache import cache_dir
from ..zoo import weights as store
from ..zoo.pretrained import ModelCfg


def artefact_path(cfg: ModelCfg, size: tuple[int, int], kind: str, suffix: str) -> Path:
    """``<cache>/<kind>/<model>_<w>x<h>_<key><suffix>``."""
    st = store.status_of(cfg)
    ident = f"{__version__}|{cfg.name}|{cfg.arch_args}|{size}|{st.file.sha256 if st else ''}|{torch.__version__}"
    key = hashlib.sha256(ident.encode()).hexdigest()[:16]
    return cache_dir(kind) / f"{cfg.name.replace('/', '_')}_{size[0]}x{size[1]}_{key}{suffix}"
