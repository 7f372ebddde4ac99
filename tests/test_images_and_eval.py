"""Image and folder labelling end to end, and mIoU evaluation."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import SHIPPED, generated_camvid, make_image, need_shared


@pytest.mark.parametrize("model, golden", [("espnet-cityscapes", "espnet_p2q8_cityscapes"),
                                           ("espnetv2-s2.0-cityscapes", "espnetv2_s2.0_city")])
def test_folder_run_matches_authors_goldens(cli, tmp_path: Path, model: str, golden: str) -> None:
    src = need_shared("data", "cityscapes-samples")
    ref = need_shared("reference")
    r = cli("run", src, "--model", model, "--size", "1024x512", "--out", tmp_path / "out", "--json")
    assert r.code == 0, r.err
    summary = r.json()
    assert summary["done"] == 2 and summary["failed"] == 0 and summary["fps"] > 0
    for img in sorted(src.glob("*.png")):
        mask = cv2.imread(str(tmp_path / "out" / "masks" / f"{img.stem}.png"), cv2.IMREAD_UNCHANGED)
        assert mask.ndim == 2 and mask.shape == (1024, 2048)
        want = cv2.imread(str(ref / f"{golden}_{img.stem}.png"), cv2.IMREAD_UNCHANGED)
        small = cv2.resize(mask, (want.shape[1], want.shape[0]), interpolation=cv2.INTER_NEAREST)
        assert (small == want).mean() >= 0.995
        overlay = cv2.imread(str(tmp_path / "out" / "overlays" / f"{img.stem}.jpg"))
        assert overlay.shape == (1024, 2048, 3)


def test_bad_file_in_folder_is_skipped_and_reported(cli, tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("sample5.jpg", "sample11.jpg")):
        make_image(src / name, size=(200, 150), seed=i)
    (src / "notes.jpg").write_text("this is not an image")
    (src / "empty.png").write_bytes(b"")
    r = cli("run", src, *SHIPPED, "--out", tmp_path / "out", "--json")
    assert r.code == 0  # the run completed; the bad inputs are reported, not fatal
    s = r.json()
    assert s["done"] == 2 and s["failed"] == 2
    assert {Path(f["item"]).name for f in s["failures"]} == {"notes.jpg", "empty.png"}
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["sample11.png", "sample5.png"]


def test_glob_and_single_image(cli, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, stem in enumerate(["sample1", "sample10", "sample11", "sample12", "sample13", "sample2", "sample5"]):
        make_image(photos / f"{stem}.jpg", size=(160 + 16 * i, 120), seed=i)
    r = cli("run", str(photos / "sample1*.jpg"), *SHIPPED, "--out", tmp_path / "g", "--json")
    assert r.code == 0, r.err
    assert r.json()["done"] == 5  # sample1, sample10 .. sample13
    assert sorted(p.stem for p in (tmp_path / "g" / "masks").iterdir()) == [
        "sample1", "sample10", "sample11", "sample12", "sample13"]
    r = cli("run", photos / "sample5.jpg", *SHIPPED, "--out", tmp_path / "one", "--json")
    assert r.code == 0
    mask = cv2.imread(str(tmp_path / "one" / "masks" / "sample5.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (120, 256) and set(np.unique(mask)) <= set(range(11))


def test_voc_model_finds_the_cats_in_a_photo(cli, tmp_path: Path) -> None:
    img = need_shared("data", "photos", "sample5.jpg")
    r = cli("run", img, "--model", "espnetv2-s0.5-voc", "--out", tmp_path / "one", "--json")
    assert r.code == 0, r.err
    mask = cv2.imread(str(tmp_path / "one" / "masks" / "sample5.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (640, 640) and set(np.unique(mask)) <= set(range(21))
    assert 8 in np.unique(mask)  # two cats


def test_output_folder_is_never_silently_reused(cli, tmp_path: Path) -> None:
    img = make_image(tmp_path / "photo.jpg")
    out = tmp_path / "o"
    assert cli("run", img, *SHIPPED, "--out", out, "-q").code == 0
    r = cli("run", img, *SHIPPED, "--out", out, "--json")
    assert r.code == 0
    assert all(str(tmp_path / "o-2") in p for p in r.json()["outputs"])
    r = cli("run", img, *SHIPPED, "--out", out, "--exist-ok", "--json")
    assert all(p.startswith(str(out) + "/") for p in r.json()["outputs"])


def _masks(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted(folder.iterdir())}


def test_mixed_size_folder_in_batches(cli, tmp_path: Path) -> None:
    """--batch 3 over a folder whose image sizes change: each batch holds only same-sized frames,
    every image gets a mask of its own size, identical to labelling the images one at a time."""
    src = tmp_path / "in"
    src.mkdir()
    sizes = [(160, 120), (160, 120), (200, 100), (160, 120), (160, 120), (160, 120), (96, 160), (96, 160)]
    for i, size in enumerate(sizes):
        make_image(src / f"img{i}.png", size=size, seed=i)
    batched = cli("run", src, *SHIPPED, "--size", "240x176", "--batch", "3", "--out", tmp_path / "b", "--json")
    assert batched.code == 0, batched.err
    assert batched.json()["done"] == len(sizes) and batched.json()["failed"] == 0
    single = cli("run", src, *SHIPPED, "--size", "240x176", "--batch", "1", "--out", tmp_path / "s", "--json")
    assert single.code == 0, single.err
    b, s = _masks(tmp_path / "b" / "masks"), _masks(tmp_path / "s" / "masks")
    assert list(b) == [f"img{i}.png" for i in range(len(sizes))] == list(s)
    for i, (w, h) in enumerate(sizes):
        assert b[f"img{i}.png"].shape == (h, w)
        assert (b[f"img{i}.png"] == s[f"img{i}.png"]).all()
    for i, (w, h) in enumerate(sizes):
        assert cv2.imread(str(tmp_path / "b" / "overlays" / f"img{i}.jpg")).shape == (h, w, 3)


def test_classes_draws_only_the_chosen_classes(cli, tmp_path: Path) -> None:
    from lightseg_cli.zoo import get_cfg

    img = make_image(tmp_path / "in" / "street.png", size=(320, 240))
    rgb = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB).astype(int)
    palette = np.array(get_cfg("lpsnet-s").dataset.palette)
    names = get_cfg("lpsnet-s").dataset.classes
    common = ["--alpha", "1", "--no-legend", "--size", "240x176"]
    r = cli("run", img, *SHIPPED, *common, "--out", tmp_path / "all", "--json")
    assert r.code == 0, r.err
    labels = cv2.imread(str(tmp_path / "all" / "masks" / "street.png"), cv2.IMREAD_UNCHANGED)
    ids, counts = np.unique(labels, return_counts=True)
    assert len(ids) >= 3
    chosen = [int(i) for i in ids[np.argsort(counts)[::-1][:2]]]  # the two largest classes
    # by name (any case) and by id
    r = cli("run", img, *SHIPPED, *common, "--classes", f"{names[chosen[0]].upper()},{chosen[1]}", "--out",
            tmp_path / "some", "--json")
    assert r.code == 0, r.err
    assert (cv2.imread(str(tmp_path / "some" / "masks" / "street.png"), cv2.IMREAD_UNCHANGED) == labels).all()
    drawn = np.isin(labels, chosen)
    colours = palette[labels]
    some = cv2.cvtColor(cv2.imread(str(tmp_path / "some" / "overlays" / "street.jpg")), cv2.COLOR_BGR2RGB).astype(int)
    every = cv2.cvtColor(cv2.imread(str(tmp_path / "all" / "overlays" / "street.jpg")), cv2.COLOR_BGR2RGB).astype(int)

    def diff(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
        return float(np.abs(a - b)[where].mean())

    assert diff(some, colours, drawn) < 12  # chosen classes: their colour (alpha 1)
    assert diff(some, rgb, ~drawn) < 8  # the others: the frame itself
    assert diff(every, colours, ~drawn) < 12 and diff(rgb, colours, ~drawn) > 30  # ... which would differ


def test_unknown_class_is_a_usage_error(cli, tmp_path: Path) -> None:
    img = make_image(tmp_path / "photo.png")
    r = cli("run", img, *SHIPPED, "--classes", "road,unicorn,42", "--out", tmp_path / "o")
    assert r.code == 2
    lines = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in r.err
    assert "unicorn" in lines[0] and "42" in lines[0] and "road" not in lines[0].split(" not in ")[0]
    assert "pedestrian" in lines[0]  # lists the model's classes
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*.png"))


def test_exact_labels_reach_the_pipeline(cli, tmp_path: Path) -> None:
    """--exact-labels: the masks a run writes are the Segmenter's exact labels for the same pixels, and
    differ from the default (nearest-resized) labels at class boundaries."""
    from lightseg_cli.infer.segmenter import Segmenter

    img = make_image(tmp_path / "in" / "street.png", size=(320, 240))
    rgb = cv2.cvtColor(cv2.imread(str(img)), cv2.COLOR_BGR2RGB)
    for flag, out in (("--exact-labels", "exact"), (None, "nearest")):
        r = cli("run", img, *SHIPPED, "--size", "240x176", "--backend", "torch", *([flag] if flag else []), "--out",
                tmp_path / out, "-q")  # the backend of `want` below: two backends may differ at a few boundary pixels
        assert r.code == 0, r.err
    exact = cv2.imread(str(tmp_path / "exact" / "masks" / "street.png"), cv2.IMREAD_UNCHANGED)
    nearest = cv2.imread(str(tmp_path / "nearest" / "masks" / "street.png"), cv2.IMREAD_UNCHANGED)
    want = Segmenter("lpsnet-s", size=(240, 176), exact_labels=True)([rgb])[0]
    assert (exact == want).all()
    assert (exact != nearest).any() and (exact == nearest).mean() > 0.95


def test_eval_espnet_camvid_reproduces_authors_figure(cli) -> None:
    val = need_shared("data", "camvid", "val.txt")
    r = cli("eval", "--model", "espnet-camvid", "--data", val, "--json")
    assert r.code == 0, r.err
    res = r.json()
    assert res["images"] == 101
    assert abs(res["miou"] * 100 - 70.10) <= 0.5
    assert set(res["per_class"]) == {"sky", "building", "pole", "road", "pavement", "tree", "sign", "fence", "car",
                                     "pedestrian", "bicyclist"}


def test_eval_accepts_images_labels_folder(cli, tmp_path: Path) -> None:
    camvid = need_shared("data", "camvid")
    lines = (camvid / "val.txt").read_text().split("\n")[:3]
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for line in lines:
        img, lab = line.split()
        shutil.copy(camvid / img, tmp_path / "images" / Path(img).name)
        shutil.copy(camvid / lab, tmp_path / "labels" / Path(lab).name)
    (tmp_path / "list.txt").write_text("\n".join(f"images/{Path(a).name} labels/{Path(b).name}"
                                                 for a, b in (ln.split() for ln in lines)))
    a = cli("eval", "--model", "espnet-camvid", "--data", tmp_path, "--json").json()
    b = cli("eval", "--model", "espnet-camvid", "--data", tmp_path / "list.txt", "--json").json()
    assert a["images"] == b["images"] == 3
    assert a["miou"] == pytest.approx(b["miou"])
    assert 0.5 < a["miou"] <= 1.0


def test_eval_reports_malformed_data(cli, tmp_path: Path) -> None:
    (tmp_path / "bad.txt").write_text("only-one-column.png\n")
    r = cli("eval", *SHIPPED, "--data", tmp_path / "bad.txt")
    assert r.code != 0 and "expected 'image label'" in r.err and "Traceback" not in r.err


def test_eval_scores_what_runs_backend_and_precision(cli, tmp_path: Path) -> None:
    """`eval` takes run's engine options; ONNX Runtime scores like torch on the same generated set."""
    pytest.importorskip("onnxruntime")
    data = generated_camvid(tmp_path / "set", 3)
    torch_run = cli("eval", "--model", "lpsnet-s", "--data", data, "--backend", "torch", "--json")
    assert torch_run.code == 0, torch_run.err
    ort_run = cli("eval", "--model", "lpsnet-s", "--data", data, "--backend", "onnxruntime", "--fp32", "--json")
    assert ort_run.code == 0, ort_run.err
    a, b = torch_run.json(), ort_run.json()
    assert (a["backend"], b["backend"], b["precision"]) == ("torch", "onnxruntime", "fp32")
    assert abs(a["miou"] - b["miou"]) < 0.005
    assert cli("eval", "--model", "lpsnet-s", "--data", data, "--backend", "nope").code == 2
