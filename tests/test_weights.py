"""Weight lookup, verification, import, download failures, and the errors users see."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lightseg_cli.errors import WeightsError
from lightseg_cli.zoo import create_model, get_cfg
from lightseg_cli.zoo import weights as store

from .conftest import make_image

MODEL = "espnetv2-s0.5-cityscapes-512x256"
FILE = "espnetv2/espnetv2_s_0.5_city_512x256.pth"


@pytest.fixture
def weights_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $LIGHTSEG_WEIGHTS: the authors' weights are nowhere (the user cache is empty too)."""
    d = tmp_path / "w"
    (d / "espnetv2").mkdir(parents=True)
    monkeypatch.setenv("LIGHTSEG_WEIGHTS", str(d))
    return d


def test_missing_weights_give_one_clear_line(weights_dir: Path, cli, tmp_path: Path) -> None:
    r = cli("run", make_image(tmp_path / "photo.jpg"), "--model", MODEL, "--out", tmp_path / "o")
    assert r.code != 0
    lines = [ln for ln in r.err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, r.err
    assert MODEL in lines[0] and FILE in lines[0]
    assert "lightseg weights pull" in lines[0] and "lightseg weights import" in lines[0]
    assert "Traceback" not in r.err


@pytest.mark.parametrize("damage", ["truncated", "flipped"])
def test_damaged_weights_are_refused(weights_dir: Path, shared_weights: Path, cli, tmp_path: Path,
                                     damage: str) -> None:
    data = (shared_weights / FILE).read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data = data[:1000] + bytes([data[1000] ^ 0xFF]) + data[1001:]
    (weights_dir / FILE).write_bytes(data)
    r = cli("run", make_image(tmp_path / "photo.jpg"), "--model", MODEL, "--out", tmp_path / "o")
    assert r.code != 0
    assert "fails its sha256 check" in r.err and FILE in r.err and "lightseg weights pull" in r.err
    assert "Traceback" not in r.err
    with pytest.raises(WeightsError):
        create_model(MODEL)


def test_lookup_order_prefers_env_then_cache(weights_dir: Path, shared_weights: Path) -> None:
    shutil.copy(shared_weights / FILE, weights_dir / FILE)
    assert store.resolve(get_cfg(MODEL)) == weights_dir / FILE
    # A corrupt copy in $LIGHTSEG_WEIGHTS is skipped when the cache has a good one.
    (weights_dir / FILE).write_bytes(b"junk")
    cached = store.cache_dir() / FILE
    cached.parent.mkdir(parents=True)
    shutil.copy(shared_weights / FILE, cached)
    assert store.resolve(get_cfg(MODEL)) == cached


def test_import_copies_and_verifies(weights_dir: Path, shared_weights: Path, tmp_path: Path, cli) -> None:
    src = tmp_path / "downloads"
    src.mkdir()
    shutil.copy(shared_weights / FILE, src / Path(FILE).name)  # flat layout is fine
    bad = "espnetv2/espnetv2_s_1.0_city_512x256.pth"
    (src / Path(bad).name).write_bytes(b"not a checkpoint")
    r = cli("weights", "import", src, "--json")
    assert r.code != 0  # one file was refused
    rows = {row["file"]: row["result"] for row in r.json()}
    assert rows[FILE].startswith("imported")
    assert rows[bad].startswith("skipped")
    assert (store.cache_dir() / FILE).is_file()
    assert not (store.cache_dir() / bad).exists()
    assert store.resolve(get_cfg(MODEL)) == store.cache_dir() / FILE


def test_weights_list_and_verify(cli, shared_weights: Path) -> None:
    r = cli("weights", "list", "--json")
    assert r.code == 0
    files = {f["file"]: f for f in r.json()["files"]}
    assert files[FILE]["verified"] is True
    assert cli("weights", "verify").code == 0


def test_pull_offline_is_a_clear_error(weights_dir: Path, cli, monkeypatch: pytest.MonkeyPatch) -> None:
    wf = store.manifest()[FILE]
    # An address nothing listens on stands in for "offline".
    monkeypatch.setitem(store.manifest(), FILE, store.WeightFile(wf.path, wf.sha256,
                        "http://127.0.0.1:9/espnetv2_s_0.5_city_512x256.pth", wf.license, wf.source))
    r = cli("weights", "pull", MODEL)
    assert r.code != 0
    assert "cannot download" in r.err and FILE in r.err and "weights import" in r.err
    assert "Traceback" not in r.err
    assert not any(store.cache_dir().rglob("*.pth"))


def test_a_model_without_released_weights_says_how_to_train_it() -> None:
    from dataclasses import replace

    cfg = replace(get_cfg("lpsnet-l"), weights="lpsnet/not_released.pth")
    with pytest.raises(WeightsError) as e:
        store.resolve(cfg)
    msg = str(e.value)
    assert "no weights" in msg and "lightseg train --model lpsnet-l-camvid " in msg and "best.pth" in msg
    assert "\n" not in msg
