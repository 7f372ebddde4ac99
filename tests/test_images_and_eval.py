"""Image and folder labelling end to end, and mIoU evaluation."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from .conftest import need_shared


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
    photos = need_shared("data", "photos")
    src = tmp_path / "in"
    src.mkdir()
    for name in ("sample5.jpg", "sample11.jpg"):
        shutil.copy(photos / name, src / name)
    (src / "notes.jpg").write_text("this is not an image")
    (src / "empty.png").write_bytes(b"")
    r = cli("run", src, "--model", "espnetv2-s0.5-voc", "--out", tmp_path / "out", "--json")
    assert r.code == 0  # the run completed; the bad inputs are reported, not fatal
    s = r.json()
    assert s["done"] == 2 and s["failed"] == 2
    assert {Path(f["item"]).name for f in s["failures"]} == {"notes.jpg", "empty.png"}
    assert sorted(p.name for p in (tmp_path / "out" / "masks").iterdir()) == ["sample11.png", "sample5.png"]


def test_glob_and_single_image(cli, tmp_path: Path) -> None:
    photos = need_shared("data", "photos")
    r = cli("run", str(photos / "sample1*.jpg"), "--model", "espnetv2-s0.5-voc", "--out", tmp_path / "g",
            "--json")
    assert r.code == 0, r.err
    assert r.json()["done"] == 5  # sample1, sample10 .. sample13
    assert sorted(p.stem for p in (tmp_path / "g" / "masks").iterdir()) == [
        "sample1", "sample10", "sample11", "sample12", "sample13"]
    r = cli("run", photos / "sample5.jpg", "--model", "espnetv2-s0.5-voc", "--out", tmp_path / "one", "--json")
    assert r.code == 0
    mask = cv2.imread(str(tmp_path / "one" / "masks" / "sample5.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (640, 640) and set(np.unique(mask)) <= set(range(21))
    assert 8 in np.unique(mask)  # two cats


def test_output_folder_is_never_silently_reused(cli, tmp_path: Path) -> None:
    img = need_shared("data", "photos", "sample5.jpg")
    out = tmp_path / "o"
    assert cli("run", img, "--model", "espnetv2-s0.5-voc", "--out", out, "-q").code == 0
    r = cli("run", img, "--model", "espnetv2-s0.5-voc", "--out", out, "--json")
    assert r.code == 0
    assert all(str(tmp_path / "o-2") in p for p in r.json()["outputs"])
    r = cli("run", img, "--model", "espnetv2-s0.5-voc", "--out", out, "--exist-ok", "--json")
    assert all(p.startswith(str(out) + "/") for p in r.json()["outputs"])


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
    r = cli("eval", "--model", "espnet-camvid", "--data", tmp_path / "bad.txt")
    assert r.code != 0 and "expected 'image label'" in r.err and "Traceback" not in r.err
