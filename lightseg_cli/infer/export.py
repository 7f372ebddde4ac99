"""``lightseg export``: ONNX (verified with ONNX Runtime on a real image) and TensorRT engines.

The exported graph takes the normalised ``(N, 3, H, W)`` float input at the network size and
returns logits at that size; the preprocessing that goes before it is the model's
``Preprocess`` (written into the ONNX metadata, so a deployment can reproduce it).

The check image ships with the package (``check_image.jpg``, 512x512): the NASA portrait of
astronaut Eileen Collins as distributed in scikit-image's sample data, public domain (no known
copyright restrictions). A real photo with a person, sky-like and flat regions.
"""

from __future__ import annotations

import importlib.util
import io
import json
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..errors import LightsegError, UsageError
from ..io import atomic
from ..io.images import read_rgb
from ..zoo import create_model
from ..zoo.pretrained import ModelCfg
from .preprocess import Normalizer, fit_size

OPSET = 17
CHECK_IMAGE = "check_image.jpg"  # package data beside this module


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    size: tuple[int, int]
    half: bool
    dynamic: bool
    agreement: float | None  # fraction of equal labels vs torch on the check image
    check_image: str | None

    def to_json(self) -> dict:
        return {"path": str(self.path), "format": self.format, "size": list(self.size), "half": self.half,
                "dynamic": self.dynamic, "label_agreement": self.agreement, "check_image": self.check_image}


def _metadata(cfg: ModelCfg, size: tuple[int, int]) -> dict[str, str]:
    p = cfg.preprocess
    return {
        "lightseg_model": cfg.name,
        "classes": json.dumps(list(cfg.dataset.classes)),
        "input_size_wh": f"{size[0]}x{size[1]}",
        "preprocess": json.dumps({"order": p.order, "mean": p.mean, "std": p.std, "resize": p.resize,
                                  "note": "x = (pixel - mean) / std, pixels 0..255, channel order as given"}),
    }


def onnx_graph(
    net: torch.nn.Module, cfg: ModelCfg, size: tuple[int, int], *, half: bool = False, dynamic: bool = False,
    batch: int = 1,
) -> bytes:
    """The checked ONNX graph of ``net`` (BN already folded) at ``size``, serialised, with the
    model's metadata."""
    import onnx

    w, h = size
    x = torch.zeros(batch, 3, h, w)
    net = net.eval().float()
    axes = {"input": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch", 2: "height", 3: "width"}} \
        if dynamic else None
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        torch.onnx.export(net, (x,), buf, dynamo=False, opset_version=OPSET, input_names=["input"],
                          output_names=["logits"], dynamic_axes=axes, do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    if half:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "number truncated to 1e-07": expected for fp16 weights
            model = _to_fp16(model)
    for k, v in _metadata(cfg, size).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.checker.check_model(model)
    return model.SerializeToString()


def export_onnx(
    net: torch.nn.Module, cfg: ModelCfg, size: tuple[int, int], out: Path, *, half: bool = False,
    dynamic: bool = False, batch: int = 1,
) -> Path:
    """Write the ONNX graph of ``net`` (:func:`onnx_graph`) to ``out`` (atomically); returns ``out``."""
    graph = onnx_graph(net, cfg, size, half=half, dynamic=dynamic, batch=batch)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(out, graph)
    return out


def _to_fp16(model):  # type: ignore[no-untyped-def]
    """Store weights and compute in float16, keeping float32 inputs and outputs."""
    try:
        from onnxconverter_common import float16  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError("--half ONNX export needs onnxconverter-common (pip install onnxconverter-common)") from None
    return float16.convert_float_to_float16(model, keep_io_types=True)


def ort_session(path: Path, device: torch.device, threads: int = 0):  # type: ignore[no-untyped-def]
    """An ONNX Runtime session on the best execution provider available for ``device``."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        so.intra_op_num_threads = threads
    available = ort.get_available_providers()
    wanted = ["CPUExecutionProvider"]
    if device.type == "cuda":
        wanted = [p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available] + wanted
    return ort.InferenceSession(str(path), so, providers=wanted)


def check_image() -> np.ndarray:
    """The real photo exports are verified on (never random noise, whose labels are unstable)."""
    with resources.as_file(resources.files(__package__) / CHECK_IMAGE) as path:
        return read_rgb(path)


def verify_onnx(path: Path, net: torch.nn.Module, cfg: ModelCfg, size: tuple[int, int],
                image: np.ndarray) -> float:
    """Fraction of pixels where ONNX Runtime's labels equal torch's on ``image``."""
    norm = Normalizer(cfg.preprocess, size, torch.device("cpu"), torch.float32)
    x = norm(torch.from_numpy(image)[None])
    with torch.no_grad():
        ref = net(x).argmax(1).numpy()
    sess = ort_session(path, torch.device("cpu"))
    got = sess.run(None, {"input": x.numpy()})[0].argmax(1)
    return float((got == ref).mean())


def export(model: str, fmt: str, size: tuple[int, int] | None, out: Path | None, *, half: bool = False,
           dynamic: bool = False) -> ExportResult:
    """Export a zoo model; ONNX is verified against torch on a real image (>= 99.9% equal labels)."""
    if fmt not in ("onnx", "tensorrt"):
        raise UsageError(f"unknown format {fmt!r}: use onnx or tensorrt")
    if importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        raise UsageError("export needs the onnx extra: pip install 'lightseg[onnx]'")
    if fmt == "tensorrt":
        _check_tensorrt()  # before any work, so nothing is left behind
    net, cfg = create_model(model)
    size = fit_size(size or cfg.input_size, cfg.size_divisor)
    stem = f"{cfg.name.replace('/', '_')}_{size[0]}x{size[1]}{'_fp16' if half else ''}"
    if fmt == "onnx":
        onnx_path = out or Path(f"{stem}.onnx")
    else:  # the engine is built from an ONNX file written beside it
        onnx_path = out.with_suffix(".onnx") if out else Path(f"{stem}.onnx")
    export_onnx(net, cfg, size, onnx_path, half=half, dynamic=dynamic)
    image = check_image()
    agreement = verify_onnx(onnx_path, net, cfg, size, image)
    need = 0.995 if half else 0.999  # fp16 rounding legitimately moves a few boundary pixels
    if agreement < need:
        raise LightsegError(f"{onnx_path}: ONNX Runtime labels agree with torch on only {agreement * 100:.2f}% "
                            f"of pixels (need {need * 100:g}%)")
    if fmt == "onnx":
        return ExportResult(onnx_path, "onnx", size, half, dynamic, agreement, CHECK_IMAGE)
    engine = build_tensorrt(onnx_path, out or Path(f"{stem}.engine"), half=half)
    return ExportResult(engine, "tensorrt", size, half, dynamic, agreement, CHECK_IMAGE)


def _check_tensorrt() -> None:
    if importlib.util.find_spec("tensorrt") is None:
        raise UsageError("TensorRT is not installed on this machine (it ships with JetPack on Jetson and as the "
                         "'tensorrt' wheel on CUDA desktops); export --format onnx works everywhere")
    if not torch.cuda.is_available():
        raise UsageError("TensorRT export needs a CUDA GPU; export --format onnx works everywhere")


def build_tensorrt(onnx_path: Path, out: Path, half: bool) -> Path:
    """Serialise a TensorRT engine from an ONNX file (needs TensorRT and a CUDA GPU)."""
    _check_tensorrt()
    import tensorrt as trt  # type: ignore[import-not-found]

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise LightsegError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if half:
        config.set_flag(trt.BuilderFlag.FP16)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise LightsegError(f"TensorRT failed to build an engine from {onnx_path}")
    atomic.write_bytes(out, bytes(engine))
    return out
