"""Inference backends: something that maps a normalised input batch to logits on one device.

``torch`` runs the (BN-folded) eager model under ``inference_mode``, channels-last, with fp16 on
CUDA when asked. Other backends register themselves in ``BACKENDS``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import nn

from ..zoo.pretrained import ModelCfg


class Backend(Protocol):
    name: str
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """Eager PyTorch."""

    name = "torch"

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype) -> None:
        self.device = device
        self.model = model.to(device=device, dtype=dtype, memory_format=torch.channels_last)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))


BackendFactory = Callable[[nn.Module, ModelCfg, tuple[int, int], torch.device, torch.dtype], Backend]

BACKENDS: dict[str, BackendFactory] = {
    "torch": lambda model, cfg, size, device, dtype: TorchBackend(model, device, dtype),
}


def make_backend(
    name: str, model: nn.Module, cfg: ModelCfg, size: tuple[int, int], device: torch.device, dtype: torch.dtype
) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown inference backend {name!r}; available: {', '.join(BACKENDS)}") from None
    return factory(model, cfg, size, device, dtype)
