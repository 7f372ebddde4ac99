"""The ``openvino`` inference backend (optional extra ``lightseg[openvino]``): OpenVINO's CPU plugin.

fp32 runs an ONNX export of the network without its final logit resize (labels are sampled from the
low-resolution logits, as on the torch backend), kept in the user cache after the first run (where
the disk cannot take it, the export is simply made again at each start). OpenVINO reads
ONNX itself in a quarter second; ``openvino.convert_model`` was the slow way (2 cores, lpsnet-s at
480x360: export 1.7 s + read 0.25 s, against 4.6 s to convert that ONNX file, or 6.4 s to trace
and convert the torch model). ``int8`` runs the model ``lightseg quantize`` wrote (``quantize.py``).

Threads follow the calling thread's torch setting, which the pipeline sets per inference worker
(and through which ``pipeline/layout.py`` measures the layouts): each call takes an idle infer
request compiled for that thread count (``INFERENCE_NUM_THREADS``), each with a compiled model of
its own, so several single-threaded workers infer at the same time.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import UsageError
from ..io import atomic
from ..zoo.pretrained import ModelCfg
from .artefacts import artefact_path
from .export import onnx_graph

INSTALL = "pip install 'lightseg[openvino]'"


def require(module: str = "openvino") -> Any:
    """Import a module of the openvino extra, or raise a usage error that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(f"backend openvino is not installed: {INSTALL}") from None


def onnx_path(cfg: ModelCfg, size: tuple[int, int]) -> Path:
    """The cached fp32 graph OpenVINO runs (logits at the network's last feature size)."""
    return artefact_path(cfg, size, "openvino", ".onnx")


def int8_path(cfg: ModelCfg, size: tuple[int, int]) -> Path:
    """Where ``lightseg quantize`` writes the int8 model (OpenVINO IR: this .xml and a .bin beside it)."""
    return artefact_path(cfg, size, "openvino", ".int8.xml")


def quantize_command(cfg: ModelCfg, size: tuple[int, int]) -> str:
    return f"lightseg quantize --model {cfg.name} --size {size[0]}x{size[1]} --calib DIR_OR_LIST"


def read_model(core: Any, net: nn.Module, cfg: ModelCfg, size: tuple[int, int], precision: str) -> Any:
    """The ``openvino.Model`` for ``precision``: the int8 model ``lightseg quantize`` wrote, else the
    fp32 ONNX export of ``net`` (cached on first use)."""
    if precision == "int8":
        path = int8_path(cfg, size)
        if not path.is_file():
            raise UsageError(f"no int8 model of {cfg.name} at {size[0]}x{size[1]} yet; make one with "
                             f"`{quantize_command(cfg, size)}`")
        return core.read_model(str(path))
    path = onnx_path(cfg, size)
    if path.is_file():
        return core.read_model(str(path))
    require("onnx")  # the exporter's; part of the extra
    graph = onnx_graph(net.cpu(), cfg, size)
    with contextlib.suppress(OSError):  # the cache only saves time: a full or read-only disk still runs
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_bytes(path, graph)
    return core.read_model(graph)


class OpenVinoBackend:
    """OpenVINO on the CPU, fp32 or the quantized int8 model."""

    name = "openvino"

    def __init__(self, model: nn.Module, cfg: ModelCfg, size: tuple[int, int], device: torch.device,
                 dtype: torch.dtype, precision: str = "fp32") -> None:
        ov = require()
        if device.type != "cpu":
            raise ValueError("the openvino backend runs on the CPU (--device cpu)")
        self.device = device
        self.core = ov.Core()
        self.model = read_model(self.core, model, cfg, size, precision)
        self._lock = threading.Lock()
        self._idle: dict[int, list[Any]] = {}  # thread count -> infer requests not in use

    def _compile(self, threads: int) -> Any:
        import openvino.properties as props
        import openvino.properties.hint as hint

        return self.core.compile_model(self.model, "CPU", {
            hint.performance_mode: hint.PerformanceMode.LATENCY,
            props.inference_num_threads: threads,
            # fp32 means fp32: on CPUs with bf16 units the plugin would otherwise run bf16 by default.
            hint.inference_precision: "f32",
            # The pipeline's other stages share these cores; pinned inference threads could not
            # make room for them (measured here: unpinned not slower, 2 workers x 1 thread).
            hint.enable_cpu_pinning: False,
        })

    @contextlib.contextmanager
    def _request(self) -> Iterator[Any]:
        """An idle infer request compiled for the calling thread's thread count, held for one call.
        Each request has a compiled model of its own: the requests of one compiled model (one
        stream under the LATENCY hint) run one at a time, so two single-threaded workers sharing it
        measured no faster than one (lpsnet-m 480x360: 2 x 100 ms vs 2 x 50 ms apart). Requests are
        pooled, not kept per thread, so callers on ever new threads (e.g. Ray's) reuse them."""
        threads = torch.get_num_threads()
        with self._lock:
            idle = self._idle.setdefault(threads, [])
            req = idle.pop() if idle else None
            if req is None:  # compiled under the lock: one compilation at a time
                req = self._compile(threads).create_infer_request()
        try:
            yield req
        finally:
            with self._lock:
                self._idle[threads].append(req)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        outs = []
        with self._request() as req:
            # The graph has a fixed batch of 1. Each image is copied straight into the request's own
            # input tensor, whatever its strides (the pipeline's frames are channels-last): one copy,
            # and OpenVINO reads the buffer it allocated, which measured faster than handing it a new
            # caller buffer every frame (lpsnet-m 480x360, one thread: 35.8 vs 42.1 ms per inference).
            feed = req.get_input_tensor(0).data
            for xi in x.detach().split(1):
                np.copyto(feed, xi.numpy(), casting="same_kind")
                req.infer()
                outs.append(torch.from_numpy(req.get_output_tensor(0).data.copy()))
        return torch.cat(outs)
