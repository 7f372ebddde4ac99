"""``create_model``: the single public way to get a zoo network, with its weights, ready to run."""

from __future__ import annotations

import torch
from torch import nn

from ..models.layers import fuse_for_inference
from . import weights as weight_store
from .classmap import weight_module
from .local import get_cfg
from .pretrained import ModelCfg
from .registry import build_model


def create_model(
    name: str | ModelCfg,
    *,
    pretrained: bool = True,
    device: str | torch.device = "cpu",
    fold_bn: bool = True,
) -> tuple[nn.Module, ModelCfg]:
    """Build a zoo model, load and verify its weights, and prepare it for inference.

    Args:
        name: a zoo name (short forms allowed, see ``resolve_name``) or a ``ModelCfg``.
        pretrained: load the entry's weights (``strict=True``); otherwise random init.
        device: where the model lives.
        fold_bn: apply the inference rewrites (BN folding, shuffle removal); the model is put in
            eval mode either way.

    Returns:
        ``(model, cfg)``; the model is in eval mode.

    Example:
        >>> model, cfg = create_model("espnetv2-s2.0-cityscapes")
        >>> cfg.input_size
        (1024, 512)
    """
    cfg = name if isinstance(name, ModelCfg) else get_cfg(name)
    model = build_model(cfg)
    if pretrained:
        weight_module(model).load_state_dict(weight_store.load_state_dict(cfg), strict=True)
    model.eval()
    if fold_bn:
        fuse_for_inference(model)
    return model.to(device), cfg
