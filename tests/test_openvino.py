"""The openvino backend, `lightseg quantize` (int8), --precision int8/auto and `bench --precision ... --eval`:
real forward passes on real CamVid / Cityscapes images."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from lightseg_cli import profiles
from lightseg_cli.errors import UsageError
from lightseg_cli.infer import precision
from lightseg_cli.io.images import read_rgb

from .conftest import SHIPPED, make_image, need_shared

HAS_OPENVINO = importlib.util.find_spec("openvino") is not None and importlib.util.find_spec("nncf") is not None
needs_openvino = pytest.mark.skipif(not HAS_OPENVINO, reason="the openvino extra is not installed "
                                    "(pip install -e '.[openvino]')")
SIZE = ["--size", "480x360"]


def _camvid_list(tmp: Path, split: str, n: int) -> Path:
    """The first ``n`` pairs of a CamVid split as a list file (paths made absolute)."""
    root = need_shared("data", "camvid")
    lines = (root / f"{split}.txt").read_text().split("\n")[:: 30][:n]
    out = tmp / f"{split}{n}.txt"
    out.write_text("\n".join(" ".join(str(root / p) for p in ln.split()) for ln in lines))
    return out


@pytest.fixture(scope="module")
def ov_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One user cache for the int8 tests of this module: they use what the quantize test wrote."""
    return tmp_path_factory.mktemp("ov-cache")


@pytest.fixture
def quantized(cli, ov_cache: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
              _isolated_env: None) -> dict:
    """lpsnet-s quantized on 6 CamVid train images and measured on 4 val images (once per module)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(ov_cache))
    done = ov_cache / "quantized.json"
    if not done.is_file():
        tmp = tmp_path_factory.mktemp("lists")
        evl = _camvid_list(tmp, "val", 4)
        r = cli("quantize", *SHIPPED, *SIZE, "--calib", _camvid_list(tmp, "train", 6), "--eval", evl,
                "--repeat", "1", "--json")
        assert r.code == 0, r.err
        done.write_text(json.dumps(r.json() | {"eval_list": str(evl)}))
    return json.loads(done.read_text())


@needs_openvino
@pytest.mark.parametrize("name, size, image", [
    ("lpsnet-s-camvid", (480, 360), ("data", "camvid", "val", "0016E5_07959.png")),
    # the families the cpu profile now runs on OpenVINO too (shipped weights, package data)
    ("ghostnet-camvid", (480, 360), ("data", "camvid", "val", "0016E5_07959.png")),
    ("fbnet-c-camvid", (480, 360), ("data", "camvid", "val", "0016E5_07959.png")),
    ("espnetv2-s0.5-cityscapes-512x256", (512, 256),
     ("data", "cityscapes-samples", "frankfurt_000000_000294_leftImg8bit.png")),
])
def test_openvino_labels_equal_torchs_on_a_real_image(name: str, size: tuple[int, int], image: tuple) -> None:
    from lightseg_cli.infer.segmenter import Segmenter

    frame = read_rgb(need_shared(*image))
    if name.startswith("espnetv2"):
        need_shared("weights")
    ov, ref = Segmenter(name, size=size, backend="openvino"), Segmenter(name, size=size, backend="torch")
    assert ov.backend.name == "openvino" and ov.logit_resize is not None  # the low-res label path, as torch's
    a, b = ov([frame])[0], ref([frame])[0]
    assert a.shape == b.shape == frame.shape[:2]
    assert (a == b).mean() >= 0.999


@needs_openvino
def test_openvino_reads_strided_batches_as_contiguous_single_frames() -> None:
    """The backend copies each image into its request's own input tensor: a channels-last batch of
    two different frames (the pipeline's layout) gives, per frame, exactly the logits of that frame
    alone as a contiguous tensor."""
    import torch

    from lightseg_cli.infer.segmenter import Segmenter

    seg = Segmenter(SHIPPED[1], size=(480, 360), backend="openvino")
    frames = [read_rgb(need_shared("data", "camvid", "val", f)) for f in ("0016E5_07959.png", "0016E5_08085.png")]
    x = seg.preprocess(seg.to_device(frames))
    assert not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
    batch = seg.infer(x)
    alone = [seg.infer(xi.contiguous()) for xi in x.split(1)]
    assert batch.shape[0] == 2 and not torch.equal(alone[0], alone[1])
    assert all(torch.equal(batch[i:i + 1], a) for i, a in enumerate(alone))


@needs_openvino
def test_openvino_workers_on_threads_infer_side_by_side() -> None:
    """Two single-threaded inference workers (the pipeline's 2 x 1 layout), each with its own
    compiled model and request, calling at the same time: every result is the one-worker result."""
    import threading

    import torch

    from lightseg_cli.infer.segmenter import Segmenter

    seg = Segmenter(SHIPPED[1], size=(480, 360), backend="openvino")
    frame = read_rgb(need_shared("data", "camvid", "val", "0016E5_07959.png"))
    x = seg.preprocess(seg.to_device([frame]))
    outs: list[torch.Tensor] = []
    ready = threading.Barrier(2)

    def worker(calls: int, barrier: threading.Barrier | None) -> None:
        torch.set_num_threads(1)
        seg.infer(x)  # compiles for this thread
        if barrier is not None:
            barrier.wait()
        for _ in range(calls):
            outs.append(seg.infer(x))

    alone = threading.Thread(target=worker, args=(1, None))
    alone.start()
    alone.join()
    threads = [threading.Thread(target=worker, args=(3, ready)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outs) == 7 and all(torch.equal(o, outs[0]) for o in outs[1:])
    assert (outs[0].argmax(1) == seg.infer(x).argmax(1)).float().mean() >= 0.999  # the main thread's own model


@needs_openvino
def test_quantize_writes_the_int8_model_that_run_uses(cli, quantized: dict, tmp_path: Path) -> None:
    q, verdict = quantized["quantize"], quantized["verdict"]
    assert q["model"] == "lpsnet-s-camvid" and q["calibration_images"] == 6 and Path(q["path"]).is_file()
    assert Path(quantized["verdict_path"]).is_file()
    assert set(verdict["precisions"]) == {"fp32", "int8"} and verdict["images"] == 4
    assert verdict["precisions"]["int8"]["label_agreement"] >= 0.9
    image = need_shared("data", "camvid", "val", "0016E5_07959.png")
    r = cli("run", image, *SHIPPED, *SIZE, "--precision", "int8", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    assert (r.json()["backend"], r.json()["precision"]) == ("openvino", "int8")
    r = cli("run", image, *SHIPPED, *SIZE, "--precision", "auto", "--out", tmp_path / "a", "--json")
    assert r.code == 0, r.err
    assert r.json()["precision"] == verdict["auto"]["precision"]  # what quantize measured decides
    assert f"auto: precision {verdict['auto']['precision']} for lpsnet-s-camvid" in r.err


@needs_openvino
def test_auto_keeps_fp32_when_int8_loses_more_than_the_threshold(cli, quantized: dict, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "MAX_MIOU_LOSS", float("-inf"))  # any int8 result is "too lossy"
    image = need_shared("data", "camvid", "val", "0016E5_07959.png")
    r = cli("run", image, *SHIPPED, *SIZE, "--precision", "auto", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    assert r.json()["precision"] == "fp32"
    line = next(ln for ln in r.err.splitlines() if ln.startswith("auto: precision"))
    assert "fp32" in line and ("not faster" in line or "loses" in line)


def test_the_auto_rule() -> None:
    fp32 = {"backend": "openvino", "model_fps": 20.0, "miou": 0.600}
    assert precision.decide(fp32, {"model_fps": 30.0, "miou": 0.597})[0] == "int8"  # 0.3 points lost
    pick, why = precision.decide(fp32, {"model_fps": 30.0, "miou": 0.594})
    assert pick == "fp32" and "loses 0.60 mIoU points" in why
    pick, why = precision.decide(fp32, {"model_fps": 19.0, "miou": 0.600})
    assert pick == "fp32" and "not faster" in why
    pick, why = precision.decide(fp32, {"model_fps": 30.0, "miou": None})
    assert pick == "fp32" and "--eval" in why


@needs_openvino
def test_bench_compares_precisions_on_a_labelled_list(cli, quantized: dict) -> None:
    r = cli("bench", *SHIPPED, *SIZE, "--precision", "fp32,int8", "--eval", quantized["eval_list"], "--repeat", "1",
            "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["images"] == 4 and list(d["precisions"]) == ["fp32", "int8"]
    fp32, int8 = d["precisions"]["fp32"], d["precisions"]["int8"]
    assert (fp32["precision"], int8["precision"], int8["backend"]) == ("fp32", "int8", "openvino")
    assert fp32["label_agreement"] == 1.0 and 0.9 <= int8["label_agreement"] <= 1.0
    for p in (fp32, int8):
        assert p["model_fps"] > 0 and 0 < p["miou"] <= 1
    assert d["auto"]["precision"] in ("fp32", "int8") and d["auto"]["reason"]


def test_int8_without_a_quantized_model_says_how_to_make_one(cli, tmp_path: Path) -> None:
    if not HAS_OPENVINO:
        pytest.skip("the openvino extra is not installed (pip install -e '.[openvino]')")
    r = cli("run", make_image(tmp_path / "a.png"), *SHIPPED, *SIZE, "--precision", "int8", "--out", tmp_path / "o")
    errors = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert r.code == 2 and len(errors) == 1 and "Traceback" not in r.err
    assert "lightseg quantize --model lpsnet-s-camvid --size 480x360 --calib" in errors[0]


def test_quantize_refuses_a_missing_or_unreadable_calibration_set(cli, tmp_path: Path) -> None:
    r = cli("quantize", *SHIPPED, "--calib", tmp_path / "nowhere")
    assert r.code == 3 and "no such calibration file or folder" in r.err and "Traceback" not in r.err
    (tmp_path / "set").mkdir()
    make_image(tmp_path / "set" / "a.png")
    (tmp_path / "set" / "b.png").write_bytes(b"not a png")
    r = cli("quantize", *SHIPPED, "--calib", tmp_path / "set")
    assert r.code == 3 and "b.png: not a readable image" in r.err and "Traceback" not in r.err
    r = cli("quantize", *SHIPPED, "--calib", tmp_path / "set" / "a.png")  # an image is not a list of them
    assert r.code == 3 and "not a readable list of images" in r.err


@pytest.fixture
def no_openvino(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if the openvino extra were not installed."""
    real = profiles._has
    monkeypatch.setattr(profiles, "_has", lambda m: m not in ("openvino", "nncf") and real(m))
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError
    monkeypatch.setitem(sys.modules, "nncf", None)


def test_without_the_extra_asking_for_openvino_is_a_one_line_usage_error(cli, tmp_path: Path,
                                                                         no_openvino: None) -> None:
    image = make_image(tmp_path / "a.png")
    for args in (["--backend", "openvino"], ["--precision", "int8"]):
        r = cli("run", image, *SHIPPED, *args, "--out", tmp_path / "o")
        errors = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
        assert r.code == 2 and len(errors) == 1 and "Traceback" not in r.err, r.err
        assert "pip install 'lightseg[openvino]'" in errors[0]
    r = cli("quantize", *SHIPPED, "--calib", tmp_path)
    assert r.code == 2 and "pip install 'lightseg[openvino]'" in r.err and "Traceback" not in r.err
    with pytest.raises(UsageError, match=r"pip install 'lightseg\[openvino\]'"):
        profiles.resolve("cpu", backend="openvino")


def test_without_the_extra_the_cpu_profile_runs_torch(cli, tmp_path: Path, no_openvino: None) -> None:
    s = profiles.for_model(profiles.resolve("cpu"), "lpsnet", "camvid")
    assert s.backend == "torch" and any("pip install 'lightseg[openvino]'" in n for n in s.notes)
    r = cli("run", make_image(tmp_path / "a.png"), *SHIPPED, "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    assert (r.json()["backend"], r.json()["precision"]) == ("torch", "fp32")


def test_the_cpu_profile_picks_the_backend_per_family() -> None:
    s = profiles.resolve("cpu")
    assert (s.backend, s.precision) == ("auto", "auto")
    want = "openvino" if importlib.util.find_spec("openvino") else "torch"
    assert profiles.for_model(s, "efficientnet-lite", "camvid").backend == want
    assert profiles.for_model(s, "lpsnet", "camvid").backend == want
    assert profiles.for_model(s, "espnetv2", "cityscapes").backend == "torch"
    assert profiles.for_model(s, "ghostnet", "camvid").backend == want
    assert profiles.for_model(s, "fbnet", "camvid").backend == want
    assert profiles.for_model(s, "espnet", "camvid").backend == "torch"  # not in the table
    cli_torch = profiles.resolve("cpu", backend="torch")
    assert profiles.for_model(cli_torch, "efficientnet-lite", "camvid").backend == "torch"


def test_calibration_images_are_spread_over_the_set(tmp_path: Path) -> None:
    from lightseg_cli.infer.quantize import calibration_images

    (tmp_path / "images").mkdir()
    for i in range(10):
        (tmp_path / "images" / f"{i}.png").write_bytes(b"")
    assert [p.name for p in calibration_images(tmp_path, 3)] == ["0.png", "3.png", "6.png"]
    lst = tmp_path / "l.txt"
    lst.write_text("# image label\nimages/1.png labels/1.png\n\nimages/2.png\n")
    assert calibration_images(lst, 8) == [tmp_path / "images/1.png", tmp_path / "images/2.png"]
    assert [p.name for p in calibration_images(tmp_path, 20)] == [f"{i}.png" for i in range(10)]
