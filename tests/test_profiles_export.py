"""Hardware profiles (parsing, auto-detection with a faked Jetson, fallbacks, the allocator, CSI
cameras on a faked Jetson) and ONNX export."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from lightseg_cli import profiles
from lightseg_cli.errors import SourceError, UsageError

from .conftest import SHIPPED, make_image, need_shared


def test_every_shipped_profile_parses() -> None:
    names = profiles.list_profiles()
    assert {"cpu", "cuda-desktop", "jetson-orin", "jetson-nano"} <= set(names)
    for n in names:
        s = profiles.load(n)
        assert s.profile == n and s.device in ("cpu", "cuda") and s.batch >= 1


def test_profile_validation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\nprecision = "fp8"\n')
    with pytest.raises(UsageError, match="precision"):
        profiles.load(str(bad))
    bad.write_text('name = "bad"\nturbo = true\n')
    with pytest.raises(UsageError, match="unknown keys turbo"):
        profiles.load(str(bad))
    with pytest.raises(UsageError, match="unknown profile"):
        profiles.load("jetson-thor")
    bad.write_text('name = "bad"\nallocator = "jemalloc"\n')
    with pytest.raises(UsageError, match="allocator 'jemalloc' is not one of tuned, glibc"):
        profiles.load(str(bad))


def _fake_jetson(root: Path, model: str | None = "NVIDIA Jetson AGX Orin Developer Kit") -> Path:
    if model:
        (root / "proc/device-tree").mkdir(parents=True)
        (root / "proc/device-tree/model").write_bytes(model.encode() + b"\x00")
    else:
        (root / "etc").mkdir()
        (root / "etc/nv_tegra_release").write_text("# R36 (release), REVISION: 4.0\n")
    return root


@pytest.mark.parametrize("model, expected", [
    ("NVIDIA Jetson AGX Orin Developer Kit", "jetson-orin"),
    ("NVIDIA Jetson Orin Nano Developer Kit", "jetson-orin"),
    ("NVIDIA Jetson Nano Developer Kit", "jetson-nano"),
    (None, "jetson-orin"),  # only /etc/nv_tegra_release
])
def test_auto_detects_a_faked_jetson(tmp_path: Path, model, expected) -> None:
    root = _fake_jetson(tmp_path, model)
    assert profiles.auto_profile(root) == expected
    s = profiles.resolve("auto", sysroot=root)
    assert s.notes[0] == f"auto: picked {expected}"


@pytest.mark.parametrize("cuda, expected", [(True, "cuda-desktop"), (False, "cpu")])
def test_auto_without_a_jetson_follows_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cuda: bool,
                                            expected: str) -> None:
    (tmp_path / "proc/device-tree").mkdir(parents=True)
    (tmp_path / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B\x00")  # a board, not a Jetson
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: cuda)
    assert profiles.auto_profile(tmp_path) == expected


def test_missing_pieces_degrade_with_one_note_each(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real_has = profiles._has
    monkeypatch.setattr(profiles, "_has", lambda m: False if m in ("tensorrt", "onnxruntime") else real_has(m))
    monkeypatch.setattr(profiles.torch.cuda, "is_available", lambda: False)
    s = profiles.resolve("jetson-orin")
    assert (s.device, s.precision, s.backend) == ("cpu", "fp32", "torch")
    assert any(n.startswith("backend tensorrt: not installed -> torch") for n in s.notes)
    assert any(n.startswith("device cuda: CUDA not available -> cpu") for n in s.notes)
    ort = tmp_path / "ort.toml"
    ort.write_text('name = "ort"\nbackend = "onnxruntime"\n')
    s = profiles.resolve(str(ort))  # a profile's choice falls back ...
    assert s.backend == "torch" and "pip install 'lightseg[onnx]'" in s.notes[0]
    with pytest.raises(UsageError, match=r"pip install 'lightseg\[onnx\]'"):  # ... the command line's stops
        profiles.resolve("cpu", backend="onnxruntime")


def test_command_line_overrides_win() -> None:
    s = profiles.resolve("cpu", batch=3, workers=2, threads=1, precision="fp16")
    assert (s.batch, s.workers, s.threads) == (3, 2, 1)
    assert s.precision == "fp32" and any("fp16" in n for n in s.notes)  # no fp16 on a CPU


def test_jetson_profile_runs_here_with_warnings(cli, tmp_path: Path) -> None:
    img = make_image(tmp_path / "photo.jpg", size=(320, 240))
    r = cli("run", img, *SHIPPED, "--profile", "jetson-nano", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    warnings = [ln for ln in r.err.splitlines() if ln.startswith("warning:")]
    assert any("tensorrt" in w for w in warnings) and "Traceback" not in r.err
    assert r.json()["backend"] == ("onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch")


def test_profile_sizes_apply_per_model_family(cli, tmp_path: Path) -> None:
    img = make_image(tmp_path / "photo.jpg", size=(320, 240))
    profile = tmp_path / "small.toml"
    profile.write_text('name = "small"\n[sizes]\nlpsnet-camvid = "320x224"\nespnetv2 = "256x128"\n')
    r = cli("run", img, *SHIPPED, "--profile", profile, "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    assert r.json()["size"] == [320, 224]
    r = cli("run", img, *SHIPPED, "--profile", profile, "--size", "160x128", "--out", tmp_path / "c", "--json")
    assert r.code == 0 and r.json()["size"] == [160, 128]  # the command line wins


def test_jetson_nano_sizes_the_authors_cityscapes_models_only(cli, tmp_path: Path, shared_weights) -> None:
    img = make_image(tmp_path / "photo.jpg", size=(320, 240))
    r = cli("run", img, "--model", "espnetv2-s0.5-voc", "--profile", "jetson-nano", "--out", tmp_path / "o",
            "--json")
    assert r.code == 0 and r.json()["size"] == [384, 384]  # native: the profile sizes Cityscapes models only
    r = cli("run", img, "--model", "espnetv2-s0.5-cityscapes", "--profile", "jetson-nano", "--out", tmp_path / "c",
            "--json")
    assert r.code == 0 and r.json()["size"] == [512, 256]


def test_profiles_commands(cli) -> None:
    r = cli("profiles", "--json")
    assert r.code == 0 and {p["name"] for p in r.json()["profiles"]} >= {"cpu", "jetson-orin"}
    r = cli("profiles", "show", "jetson-orin", "--json")
    assert r.code == 0
    d = r.json()
    assert d["requested"]["backend"] == "tensorrt" and d["resolved"]["notes"]


def test_onnx_export_agrees_with_torch_on_a_real_image(cli, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install -e '.[onnx]')")
    out = tmp_path / "m.onnx"
    r = cli("export", *SHIPPED, "--size", "480x352", "--out", out, "--json")
    assert r.code == 0, r.err
    res = r.json()
    assert res["label_agreement"] >= 0.999 and out.is_file()
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta["lightseg_model"] == "lpsnet-s-camvid" and meta["input_size_wh"] == "480x352"


def test_onnxruntime_backend_matches_torch_end_to_end(cli, tmp_path: Path) -> None:
    img = need_shared("data", "cityscapes-samples", "frankfurt_000000_000576_leftImg8bit.png")
    for backend in ("torch", "onnxruntime"):
        r = cli("run", img, "--model", "espnet-cityscapes", "--size", "1024x512", "--backend", backend, "--out",
                tmp_path / backend, "--json")
        assert r.code == 0, r.err
        assert r.json()["backend"] == backend
    a, b = (cv2.imread(str(tmp_path / k / "masks" / f"{img.stem}.png"), cv2.IMREAD_UNCHANGED)
            for k in ("torch", "onnxruntime"))
    assert (a == b).mean() >= 0.999


def test_tensorrt_export_explains_what_is_missing(cli, tmp_path: Path) -> None:
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    monkeypatch_cwd = Path.cwd()
    before = set(monkeypatch_cwd.iterdir())
    r = cli("export", *SHIPPED, "--format", "tensorrt", "--out", tmp_path / "m.engine")
    assert r.code == 2
    assert "TensorRT is not installed" in r.err and "Traceback" not in r.err
    assert not list(tmp_path.iterdir()) and set(monkeypatch_cwd.iterdir()) == before  # nothing left behind


def test_plain_backend_is_the_same_network(tmp_path: Path) -> None:
    from lightseg_cli.infer.segmenter import Segmenter

    img = make_image(tmp_path / "street.png", size=(480, 360))
    frame = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB)
    fast = Segmenter("lpsnet-s")([frame])[0]
    plain = Segmenter("lpsnet-s", backend="torch-plain")([frame])[0]
    assert (fast == plain).mean() >= 0.999


def test_cpu_plain_is_the_unoptimised_baseline() -> None:
    plain, cpu = profiles.resolve("cpu-plain"), profiles.resolve("cpu")
    assert (plain.backend, plain.workers, plain.allocator) == ("torch-plain", 1, "glibc")
    assert (cpu.backend, cpu.allocator) == ("auto", "tuned")  # the backend per model family: [backends]
    assert profiles.auto_profile() != "cpu-plain"


CPU_LPSNET = "openvino" if importlib.util.find_spec("openvino") else "torch"  # pipelines/cpu.toml [backends]
_ALLOCATOR_PROBE = """
import json, sys
from lightseg_cli import build_segmenter, tuning
seg, settings = build_segmenter("lpsnet-s", profile=sys.argv[1])
print(json.dumps({"allocator": settings.allocator, "tuned": tuning._tuned_libc is not None,
                  "backend": seg.backend.name}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the allocator thresholds are glibc's")
@pytest.mark.parametrize("profile, tuned, backend", [("cpu", True, CPU_LPSNET), ("cpu-plain", False, "torch-plain")])
def test_the_profile_sets_the_allocator(profile: str, tuned: bool, backend: str) -> None:
    """Building a segmenter from a profile applies its allocator key, in a fresh process (the setting
    is per process and cannot be undone)."""
    p = subprocess.run([sys.executable, "-c", _ALLOCATOR_PROBE, profile], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"allocator": "tuned" if tuned else "glibc", "tuned": tuned, "backend": backend}


def test_csi_camera_pipeline_on_a_faked_jetson(tmp_path: Path) -> None:
    from lightseg_cli.sources import classify
    from lightseg_cli.sources.resolve import csi_camera_pipeline, source_name

    root = _fake_jetson(tmp_path, "NVIDIA Jetson Orin Nano Developer Kit")
    assert classify("csi://0") == "camera" and source_name("csi://1?fps=60", "camera") == "csi1"
    assert csi_camera_pipeline("csi://0", root) == (
        "nvarguscamerasrc sensor-id=0 ! "
        "video/x-raw(memory:NVMM),width=1920,height=1080,framerate=30/1,format=NV12 ! "
        "nvvidconv flip-method=0 ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
        "appsink drop=true max-buffers=1")
    line = csi_camera_pipeline("csi://1?width=1280&height=720&fps=60&flip=2", root)
    assert line.startswith("nvarguscamerasrc sensor-id=1 ! ")
    assert "width=1280,height=720,framerate=60/1" in line and "flip-method=2" in line
    for bad, why in (("csi://zero", "expected csi://N"), ("csi://0?fps=fast", "expected csi://N"),
                     ("csi://0?exposure=3", "unknown CSI camera option exposure")):
        with pytest.raises(SourceError, match=why):
            csi_camera_pipeline(bad, root)


def test_csi_camera_opens_the_gstreamer_pipeline_on_a_jetson(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a (faked) Jetson with GStreamer in OpenCV, ``csi://N`` reaches OpenCV as the Argus pipeline
    with the GStreamer backend; no camera is needed to see what would be opened."""
    from lightseg_cli.sources import camera, open_source, resolve

    opened = []

    class FakeCapture:
        def __init__(self, device, api) -> None:
            opened.append((device, api))

        def isOpened(self) -> bool:
            return True

        def get(self, prop) -> float:
            return {cv2.CAP_PROP_FRAME_WIDTH: 1280, cv2.CAP_PROP_FRAME_HEIGHT: 720, cv2.CAP_PROP_FPS: 60}.get(prop, 0)

        def getBackendName(self) -> str:
            return "GSTREAMER"

        def release(self) -> None:
            pass

    monkeypatch.setattr(camera.cv2, "VideoCapture", FakeCapture)
    monkeypatch.setattr(resolve, "gstreamer_in_opencv", lambda: True)
    root = _fake_jetson(tmp_path)
    src = open_source("csi://1?width=1280&height=720&fps=60", sysroot=root)
    assert opened == [(resolve.csi_camera_pipeline("csi://1?width=1280&height=720&fps=60", root),
                       cv2.CAP_GSTREAMER)]
    info = src.info
    assert (info.kind, info.uri, info.name, info.live) == ("camera", "csi://1?width=1280&height=720&fps=60", "csi1",
                                                            True)
    assert (info.width, info.height, info.fps) == (1280, 720, 60)
    monkeypatch.setattr(resolve, "gstreamer_in_opencv", lambda: False)
    with pytest.raises(SourceError, match="without GStreamer"):
        open_source("csi://0", sysroot=root)


def test_csi_camera_elsewhere_is_a_clear_error(cli, tmp_path: Path) -> None:
    from lightseg_cli.sources import open_source

    with pytest.raises(SourceError, match="this machine is not a Jetson"):
        open_source("csi://0", sysroot=tmp_path)  # nothing Jetson-like there
    if profiles.detect_jetson():
        pytest.skip("this machine is a Jetson")
    r = cli("run", "csi://0", *SHIPPED, "--no-save")
    assert r.code == 3
    lines = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.err
    assert "csi://0" in lines[0] and "not a Jetson" in lines[0] and "/dev/video" in lines[0]
