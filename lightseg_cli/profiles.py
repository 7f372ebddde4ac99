"""Hardware profiles: ``pipelines/*.toml`` -> frozen ``Settings`` for one machine.

A profile names the device, precision, inference backend, decode/encode backends (and the x264
preset and threads), batch size, queue depth, the worker layout (inference workers x threads and
postprocess workers; ``workers = "auto"`` measures it at start, see ``pipeline/layout.py``), where
the overlay is drawn, the memory allocator's settings and default input sizes per model family.
``backend = "auto"`` takes the backend per model family from the profile's ``[backends]`` table
(``for_model``); ``precision = "auto"`` is decided per model and size where the int8 models are
known (``infer/precision.py``).
``resolve`` applies command-line overrides, then checks each choice against this machine and
falls back with one warning line per fallback (never a crash): no CUDA -> cpu/fp32, no TensorRT
-> ONNX Runtime -> torch, no GStreamer in OpenCV -> PyAV, a backend's extra not installed -> torch.
A backend asked for on the command line whose extra is not installed is a usage error instead.

``auto`` picks ``jetson-*`` on a Jetson (``/proc/device-tree/model``, ``/etc/nv_tegra_release``
under the ``sysroot`` argument, default ``/``; tests pass a folder that fakes one), ``cuda-desktop``
when CUDA is available, else ``cpu``. Profile files are parsed as data (TOML); nothing in them is executed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .errors import UsageError
from .tuning import ALLOCATORS
from .types import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "auto")
HALF = ("fp16", "bf16")  # CUDA only
BACKENDS = ("torch", "torch-plain", "onnxruntime", "tensorrt", "openvino", "auto")
# Backends a pip extra installs: backend -> (the module it needs, the extra).
EXTRAS = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino")}
DECODERS = ("pyav", "pyav-hw", "opencv-gstreamer")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
_KEYS = {"name", "description", "device", "precision", "backend", "decode", "encode", "encoder_preset",
         "encoder_threads", "batch", "queue", "threads", "workers", "postprocess_workers", "overlay", "allocator",
         "sizes", "backends"}
ROOT = Path("/")


@dataclass(frozen=True)
class Settings:
    """A resolved profile: what this run will use, and why anything differs from the profile."""

    profile: str
    description: str = ""
    device: str = "cpu"
    precision: str = "fp32"  # or "auto": int8 where `lightseg quantize` measured it worth it (infer/precision.py)
    backend: str = "torch"  # or "auto": per model family from ``backends`` (``for_model``)
    decode: str = "pyav"
    encode: str = "libx264"
    encoder_preset: str = "superfast"  # x264 speed preset of the overlay video (--preset overrides)
    encoder_threads: int = 0  # x264 threads (0 = FFmpeg's choice)
    batch: int = 1
    queue: int = 4
    threads: int = 0  # intra-op threads per torch op in the pipeline (0 = auto)
    # Inference workers on different frames: a number; 0 = one per core on a CPU (up to 4); "auto" =
    # chosen with threads and postprocess workers from a measurement at start (pipeline/layout.py).
    workers: int | str = 1
    postprocess_workers: int | str = "auto"  # a number, or "auto": measured with workers "auto", else 1
    overlay: str = "host"
    allocator: str = "tuned"  # "tuned": glibc thresholds for large tensors (tuning.py); "glibc": its defaults
    sizes: dict[str, str] = field(default_factory=dict)
    backends: dict[str, str] = field(default_factory=dict)  # per model family, for backend "auto" (default torch)
    notes: tuple[str, ...] = ()  # fallbacks taken on this machine; "auto: ..." lines explain automatic choices

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["notes"] = list(self.notes)
        return d


def profiles_dir() -> Path:
    return Path(str(resources.files("lightseg_cli.pipelines")))


def list_profiles() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.toml"))


def load(name: str) -> Settings:
    """Read ``pipelines/<name>.toml`` (or a path to a .toml file) and validate it."""
    path = Path(name) if name.endswith(".toml") else profiles_dir() / f"{name}.toml"
    if not path.is_file():
        raise UsageError(f"unknown profile {name!r}; available: {', '.join(list_profiles())}, auto")
    try:
        raw = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from None
    unknown = set(raw) - _KEYS
    if unknown:
        raise UsageError(f"{path}: unknown keys {', '.join(sorted(unknown))}")
    s = Settings(profile=raw.get("name", path.stem), **{k: v for k, v in raw.items() if k != "name"})
    _validate(s, str(path))
    return s


def _validate(s: Settings, where: str) -> None:
    if s.precision not in PRECISIONS:
        raise UsageError(f"{where}: precision {s.precision!r} is not one of {', '.join(PRECISIONS)}")
    for b in (s.backend, *s.backends.values()):
        if b not in BACKENDS:
            raise UsageError(f"{where}: backend {b!r} is not one of {', '.join(BACKENDS)}")
    if s.decode not in DECODERS:
        raise UsageError(f"{where}: decode {s.decode!r} is not one of {', '.join(DECODERS)}")
    if s.batch < 1 or s.queue < 1 or s.threads < 0 or s.encoder_threads < 0:
        raise UsageError(f"{where}: batch and queue must be >= 1, threads and encoder_threads >= 0")
    if s.workers != "auto" and not (isinstance(s.workers, int) and s.workers >= 0):
        raise UsageError(f"{where}: workers must be a number >= 0 or \"auto\" (got {s.workers!r})")
    if s.postprocess_workers != "auto" and not (isinstance(s.postprocess_workers, int) and s.postprocess_workers >= 1):
        raise UsageError(f"{where}: postprocess_workers must be a number >= 1 or \"auto\" "
                         f"(got {s.postprocess_workers!r})")
    if s.encoder_preset not in X264_PRESETS:
        raise UsageError(f"{where}: encoder_preset {s.encoder_preset!r} is not one of {', '.join(X264_PRESETS)}")
    if s.overlay not in ("host", "device"):
        raise UsageError(f"{where}: overlay must be 'host' or 'device'")
    if s.allocator not in ALLOCATORS:
        raise UsageError(f"{where}: allocator {s.allocator!r} is not one of {', '.join(ALLOCATORS)}")


def detect_jetson(sysroot: Path = ROOT) -> str | None:
    """``jetson-orin`` / ``jetson-nano`` on an NVIDIA Jetson, else None. ``sysroot`` is the folder
    holding ``proc/``, ``sys/`` and ``etc/`` (``/``; a test passes a folder that fakes a Jetson)."""
    model = ""
    for f in (sysroot / "proc/device-tree/model", sysroot / "sys/firmware/devicetree/base/model"):
        try:
            model = f.read_bytes().decode(errors="ignore").strip("\x00 \n")
            break
        except OSError:
            continue
    tegra = (sysroot / "etc/nv_tegra_release").is_file()
    if "jetson" not in model.lower() and not tegra:
        return None
    if "nano" in model.lower() and "orin" not in model.lower():
        return "jetson-nano"
    return "jetson-orin"


def auto_profile(sysroot: Path = ROOT) -> str:
    """The profile ``auto`` picks on this machine (see the module docstring)."""
    jetson = detect_jetson(sysroot)
    if jetson:
        return jetson
    return "cuda-desktop" if torch.cuda.is_available() else "cpu"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def gstreamer_in_opencv() -> bool:
    """Whether this OpenCV was built with GStreamer (JetPack's is; the PyPI wheels are not)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if "GStreamer" in line:
            return "YES" in line
    return False


def _pyav_cuda() -> bool:
    try:
        from av.codec.hwaccel import hwdevices_available

        return "cuda" in hwdevices_available()
    except Exception:  # noqa: BLE001 - older PyAV builds lack hwaccel entirely
        return False


def _encoder_works(name: str) -> bool:
    """Whether FFmpeg can open this encoder now (hardware encoders also need their device)."""
    import av

    try:
        ctx = av.CodecContext.create(name, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 64, 64, "yuv420p"
        ctx.time_base = Fraction(1, 25)
        ctx.open()
        return True
    except Exception:  # noqa: BLE001 - any failure means "use the software encoder"
        return False


def missing_extra(backend: str) -> str | None:
    """Why ``backend`` cannot run here for want of its pip extra (None: it can, or needs none)."""
    if backend in EXTRAS and not _has(EXTRAS[backend][0]):
        return f"backend {backend} is not installed: pip install 'lightseg[{EXTRAS[backend][1]}]'"
    return None


def _installed_backend(s: Settings, notes: list[str]) -> Settings:
    """Fall back from a backend this machine cannot run, noting why."""
    if s.backend == "tensorrt" and not (_has("tensorrt") and s.device.startswith("cuda")):
        nxt = "onnxruntime" if _has("onnxruntime") else "torch"
        notes.append(f"backend tensorrt: {'not installed' if not _has('tensorrt') else 'needs CUDA'} -> {nxt}")
        s = replace(s, backend=nxt)
    if s.backend == "openvino" and s.device != "cpu":
        notes.append(f"backend openvino: runs on the CPU, not {s.device} -> torch")
        s = replace(s, backend="torch")
    if why := missing_extra(s.backend):
        notes.append(f"{why} -> torch")
        s = replace(s, backend="torch", precision="fp32" if s.precision == "int8" else s.precision)
    return s


def check(s: Settings) -> Settings:
    """Degrade choices this machine cannot honour; each fallback adds a note."""
    notes = list(s.notes)
    if s.device.startswith("cuda") and not torch.cuda.is_available():
        notes.append(f"device {s.device}: CUDA not available -> cpu")
        s = replace(s, device="cpu")
    if s.device == "cpu" and s.precision in HALF:
        notes.append(f"precision {s.precision}: not supported on cpu -> fp32")
        s = replace(s, precision="fp32")
    if s.device != "cpu" and s.precision in ("int8", "auto"):
        notes.append(f"precision {s.precision}: int8 runs on the CPU only -> fp16 on {s.device}")
        s = replace(s, precision="fp16")
    if s.precision == "int8" and s.backend != "openvino":
        if s.backend != "auto":
            notes.append(f"backend {s.backend}: int8 runs on openvino -> openvino")
        s = replace(s, backend="openvino")
    s = _installed_backend(s, notes)
    if s.decode == "opencv-gstreamer" and not gstreamer_in_opencv():
        notes.append("decode opencv-gstreamer: this OpenCV has no GStreamer -> pyav")
        s = replace(s, decode="pyav")
    if s.decode == "pyav-hw" and not (s.device.startswith("cuda") and _pyav_cuda()):
        notes.append("decode pyav-hw: no CUDA hardware decoder in this PyAV/FFmpeg -> pyav (software)")
        s = replace(s, decode="pyav")
    if s.encode != "libx264" and not _encoder_works(s.encode):
        notes.append(f"encode {s.encode}: not usable here -> libx264")
        s = replace(s, encode="libx264")
    cores = os.cpu_count() or 1
    if s.workers == "auto" and (s.device != "cpu" or cores == 1 or s.threads):
        # Nothing to measure: one worker feeds a GPU, one core has one layout, and threads given
        # by hand fix the workers to the cores they leave.
        s = replace(s, workers=max(1, cores // s.threads) if s.device == "cpu" and s.threads else 1)
    if s.workers != "auto" and s.postprocess_workers == "auto":
        s = replace(s, postprocess_workers=1)
    if s.workers == 0:
        # Measured on 2 cores: two single-threaded inference workers run ESPNetv2 s0.5 at 1.3x and
        # s2.0 at about 1.0-1.1x the rate of one two-threaded worker (small ops parallelise poorly).
        workers = min(cores, 4) if s.device == "cpu" else 1
        s = replace(s, workers=workers, threads=s.threads or (max(1, cores // workers) if workers > 1 else 0))
    if s.workers != "auto" and s.workers > 1 and s.device == "cpu" and not s.threads:
        s = replace(s, threads=max(1, cores // s.workers))  # several workers share the cores
    if s.threads > cores:
        notes.append(f"threads {s.threads}: this machine has {cores} cores -> {cores}")
        s = replace(s, threads=cores)
    if s.overlay == "device" and s.device == "cpu":
        s = replace(s, overlay="host")
    return replace(s, notes=tuple(notes))


def resolve(name: str | None = "auto", *, sysroot: Path = ROOT, **overrides: Any) -> Settings:
    """Load a profile (``auto`` detects one under ``sysroot``), apply non-None overrides, check
    against this machine."""
    name = name or "auto"
    s = load(auto_profile(sysroot) if name == "auto" else name)
    if name == "auto":
        s = replace(s, notes=(f"auto: picked {s.profile}",))
    over = {k: v for k, v in overrides.items() if v is not None}
    if over:
        s = replace(s, **over)
        _validate(s, "command line")
    # What the command line asks for by name runs, or the command stops (a profile's choice falls back).
    asked = "openvino" if over.get("precision") == "int8" else over.get("backend", "")
    if why := missing_extra(asked):
        raise UsageError(why if asked == over.get("backend") else f"--precision int8 runs on openvino; {why}")
    return check(s)


def for_model(s: Settings, arch: str, dataset: str) -> Settings:
    """``s`` for one model: backend ``auto`` becomes the profile's backend for the model's family
    (``backends`` table, else torch), checked against this machine like any other choice."""
    if s.backend != "auto":
        return s
    notes = list(s.notes)
    s = _installed_backend(replace(s, backend=_per_model(s.backends, arch, dataset) or "torch"), notes)
    return replace(s, notes=tuple(notes))


def _per_model(table: dict[str, str], arch: str, dataset: str) -> str | None:
    """A profile table's value for a model. Keys are matched from the most specific:
    ``<arch>-<dataset>`` (``espnetv2-cityscapes``), then ``<arch>``, then the family (``lpsnet``)."""
    family = arch.split("-")[0]
    for key in (f"{arch}-{dataset}", f"{family}-{dataset}", arch, family):
        if key in table:
            return table[key]
    return None


def size_for(s: Settings, arch: str, dataset: str) -> tuple[int, int] | None:
    """The profile's default network size for a model, if it sets one (``sizes`` table)."""
    size = _per_model(s.sizes, arch, dataset)
    return parse_size(size) if size else None
