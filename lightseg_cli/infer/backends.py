"""Inference backends: something that maps a normalised input batch to logits on one device.

* ``torch``: the BN-folded eager model under ``inference_mode``, channels-last, fp16 on CUDA when
  asked;
* ``torch-plain``: the eager model exactly as built (no folding, NCHW): the unoptimised baseline
  that benchmarks compare against;
* ``onnxruntime``: the model exported to ONNX (cached in the user cache) and run by ONNX Runtime
  (CPU, or the CUDA / TensorRT execution providers where installed);
* ``tensorrt``: a TensorRT engine built from that export (CUDA);
* ``openvino``: OpenVINO on the CPU, fp32 or the int8 model ``lightseg quantize`` wrote
  (``openvino.py``, optional extra).

A factory gets the model, its config, the input size, the device, the torch dtype of the input and
the precision asked (the others follow the dtype; ``int8`` only on the backends in ``INT8``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from ..zoo.pretrained import ModelCfg
from .artefacts import artefact_path
from .export import build_tensorrt, export_onnx, ort_session
from .openvino import OpenVinoBackend


class Backend(Protocol):
    name: str
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


class TorchBackend:
    """Eager PyTorch."""

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype, plain: bool = False) -> None:
        self.device = device
        self.name = "torch-plain" if plain else "torch"
        self.layout = torch.contiguous_format if plain else torch.channels_last
        self.model = model.to(device=device, dtype=dtype, memory_format=self.layout)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=self.layout))


class OnnxRuntimeBackend:
    """ONNX Runtime on an ONNX export of the model (exported once, cached by model, size and weights)."""

    name = "onnxruntime"

    def __init__(self, model: nn.Module, cfg: ModelCfg, size: tuple[int, int], device: torch.device,
                 dtype: torch.dtype, precision: str = "fp32") -> None:
        self.device = device
        path = _onnx_cache_path(cfg, size)
        if not path.is_file():
            export_onnx(model.cpu(), cfg, size, path, batch=1)
            model.to(device)
        self.session = ort_session(path, device)
        self.providers = self.session.get_providers()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"input": x.detach().float().cpu().contiguous().numpy()})[0]
        return torch.from_numpy(out).to(x.device)


class TensorRTBackend:
    """A TensorRT engine built from the ONNX export (cached), run on torch CUDA buffers (TensorRT 10 API).

    Only used where TensorRT and CUDA exist (Jetson, CUDA desktops); profiles fall back otherwise.
    """

    name = "tensorrt"

    def __init__(self, model: nn.Module, cfg: ModelCfg, size: tuple[int, int], device: torch.device,
                 dtype: torch.dtype, precision: str = "fp32") -> None:
        import tensorrt as trt  # type: ignore[import-not-found]

        if device.type != "cuda":
            raise ValueError("the tensorrt backend needs a CUDA device")
        self.device = device
        onnx_path = _onnx_cache_path(cfg, size)
        half = dtype == torch.float16
        engine_path = onnx_path.with_suffix(".fp16.engine" if half else ".engine")
        if not onnx_path.is_file():
            export_onnx(model.cpu().float(), cfg, size, onnx_path)
        if not engine_path.is_file():
            build_tensorrt(onnx_path, engine_path, half=half)
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = runtime.deserialize_cuda_engine(engine_path.read_bytes())
        self.context = self.engine.create_execution_context()
        self.out_shape = (1, cfg.num_classes, size[1], size[0])
        self.stream = torch.cuda.Stream(device)
        self._lock = threading.Lock()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of ``x``, ordered on the caller's current stream like any torch op.

        ``x`` was made on the caller's stream and the logits are read there, while the engine
        runs on its own stream; nothing waits on the host. The engine's stream first waits for the
        caller's work (so ``x`` is complete), the caller's stream waits for the engine before the
        logits are used, and ``record_stream`` keeps the caching allocator from handing ``x`` or
        the outputs to new tensors while the other stream may still use them. One execution
        context is shared, so calls from several threads take turns enqueuing.
        """
        caller = torch.cuda.current_stream(self.device)
        outs = []
        with self._lock, torch.cuda.stream(self.stream):
            self.stream.wait_stream(caller)
            x.record_stream(self.stream)
            for xi in x.float().contiguous().split(1):
                out = torch.empty(self.out_shape, device=self.device, dtype=torch.float32)
                self.context.set_tensor_address("input", xi.data_ptr())
                self.context.set_tensor_address("logits", out.data_ptr())
                self.context.execute_async_v3(self.stream.cuda_stream)
                out.record_stream(caller)
                outs.append(out)
        caller.wait_stream(self.stream)
        return torch.cat(outs)


def _onnx_cache_path(cfg: ModelCfg, size: tuple[int, int]) -> Path:
    return artefact_path(cfg, size, "onnx", ".onnx")


BackendFactory = Callable[[nn.Module, ModelCfg, tuple[int, int], torch.device, torch.dtype, str], Backend]

BACKENDS: dict[str, BackendFactory] = {
    "torch": lambda model, cfg, size, device, dtype, precision: TorchBackend(model, device, dtype),
    "torch-plain": lambda model, cfg, size, device, dtype, precision: TorchBackend(model, device, dtype, plain=True),
    "onnxruntime": OnnxRuntimeBackend,
    "tensorrt": TensorRTBackend,
    "openvino": OpenVinoBackend,
}
INT8 = frozenset({"openvino"})  # backends that run the int8 model of `lightseg quantize`
# Backends that run the network without its final logit resize: the labels are sampled from the
# low-resolution logits instead (``Segmenter.labels``), the same labels for less work.
LOW_RES_LOGITS = frozenset({"torch", "openvino"})


def make_backend(
    name: str, model: nn.Module, cfg: ModelCfg, size: tuple[int, int], device: torch.device, dtype: torch.dtype,
    precision: str = "fp32",
) -> Backend:
    try:
        factory = BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown inference backend {name!r}; available: {', '.join(BACKENDS)}") from None
    if precision == "int8" and name not in INT8:
        raise ValueError(f"int8 runs on the {' or '.join(sorted(INT8))} backend, not {name}")
    return factory(model, cfg, size, device, dtype, precision)
