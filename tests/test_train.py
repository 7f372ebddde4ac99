"""Training: a real short run lowers the loss, checkpoints resume exactly, trained models run;
the shipped LPS-Net weights score above a sanity floor."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from lightseg_cli.train.trainer import TrainCfg, Trainer

from .conftest import SHARED, count_frames, generated_camvid, make_image, make_video, need_shared


@pytest.fixture
def mini_camvid(tmp_path: Path) -> tuple[Path, Path]:
    """Eight training and four validation pairs: real CamVid frames when ../shared has them, else
    generated scenes (these tests are about training mechanics, not about CamVid)."""
    if not (SHARED / "data" / "camvid").is_dir():
        return generated_camvid(tmp_path / "gen-train", 8), generated_camvid(tmp_path / "gen-val", 4)
    camvid = need_shared("data", "camvid")
    train = [ln for ln in (camvid / "train.txt").read_text().splitlines() if ln.strip()][::46][:8]
    val = [ln for ln in (camvid / "val.txt").read_text().splitlines() if ln.strip()][::25][:4]
    for name, lines in (("train.txt", train), ("val.txt", val)):
        (tmp_path / name).write_text("\n".join(" ".join(str(camvid / p) for p in ln.split()) for ln in lines))
    return tmp_path / "train.txt", tmp_path / "val.txt"


def _cfg(train: Path, val: Path, out: Path, epochs: int) -> TrainCfg:
    return TrainCfg(model="lpsnet-s", data=str(train), val=str(val), out=str(out), epochs=epochs, batch=4,
                    size=(240, 176), scale=(1.0, 1.0), jitter=0.0, lr=2e-3, warmup_epochs=0, val_every=2,
                    loss="ce")


def test_training_lowers_the_loss_and_resumes_exactly(mini_camvid, tmp_path: Path) -> None:
    torch.manual_seed(0)
    train, val = mini_camvid
    full = Trainer(_cfg(train, val, tmp_path / "full", 6))
    full.fit()
    rows = [json.loads(ln) for ln in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 6
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.85
    assert {"best.pth", "last.pth"} <= {p.name for p in (tmp_path / "full").iterdir()}

    torch.manual_seed(0)
    part = Trainer(_cfg(train, val, tmp_path / "part", 6))
    part.fit(stop_after=4)  # as if killed after epoch 4
    resumed = Trainer(_cfg(train, val, tmp_path / "part", 6))
    resumed.resume(tmp_path / "part" / "last.pth")
    assert resumed.epoch == 4
    resumed.fit()
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)


def test_train_cli_and_trained_checkpoint_as_a_model(cli, mini_camvid, tmp_path: Path) -> None:
    train, val = mini_camvid
    out = tmp_path / "run"
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--val", val, "--out", out, "--epochs", "2",
            "--batch", "4", "--size", "160x128", "--val-every", "1", "--json")
    assert r.code == 0, r.err
    assert r.json()["epochs"] == 2 and (out / "best.pth").is_file()
    r = cli("eval", "--model", out / "best.pth", "--data", val, "--json")
    assert r.code == 0, r.err
    # the checkpoint, run as a model, scores what training measured for it on the same images
    recorded = torch.load(out / "best.pth", map_location="cpu", weights_only=True)["meta"]["val_miou"]
    assert r.json()["images"] == 4 and r.json()["miou"] == pytest.approx(recorded, abs=2e-3)
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", out, "--epochs", "3", "--batch", "4",
            "--size", "160x128", "--resume", out / "last.pth", "--json")
    assert r.code == 0 and r.json()["epochs"] == 3


def test_several_training_sets_train_as_one(mini_camvid, tmp_path: Path) -> None:
    """``--data train.txt --data val.txt`` (final weights on train+val): both sets' pairs, in order."""
    train, val = mini_camvid
    logs: list[str] = []
    t = Trainer(TrainCfg(model="lpsnet-s", data=(str(train), str(val)), val=None, out=str(tmp_path / "tv"),
                         epochs=1, batch=4, size=(160, 128)), log=logs.append)
    alone = Trainer(TrainCfg(model="lpsnet-s", data=str(val), val=None, out=str(tmp_path / "v"), epochs=1,
                             batch=4, size=(160, 128)))
    assert "loading 12 training images" in logs and len(t.labels) == 12
    assert all(np.array_equal(a, b) for a, b in zip(t.labels[8:], alone.labels))


def test_fine_tuning_a_pretrained_zoo_model_keeps_matching_weights(mini_camvid, shared_weights,
                                                                   tmp_path: Path) -> None:
    train, val = mini_camvid
    logs: list[str] = []
    t = Trainer(TrainCfg(model="espnetv2-s0.5-cityscapes", data=str(train), val=None, out=str(tmp_path / "ft"),
                         epochs=1, batch=4, size=(160, 128), num_classes=11), log=logs.append)
    assert any("initialised" in m and "espnetv2-s0.5-cityscapes" in m for m in logs)
    assert t.model_cfg.dataset.scored == 11
    t.fit()
    assert (tmp_path / "ft" / "best.pth").is_file()
    # where the weights started is on record in the checkpoint and the run's record
    meta = torch.load(tmp_path / "ft" / "best.pth", map_location="cpu", weights_only=True)["meta"]
    assert "espnetv2-s0.5-cityscapes" in meta["initialised_from"]
    record = json.loads((tmp_path / "ft" / "train_cfg.json").read_text())
    assert record["initialised_from"] == meta["initialised_from"]
    scratch = Trainer(TrainCfg(model="espnetv2-s0.5-cityscapes", data=str(train), val=None, out=str(tmp_path / "s"),
                               epochs=1, batch=4, size=(160, 128), num_classes=11, pretrained=False))
    assert scratch.initialised_from == "scratch"


def _shipped_lpsnet() -> list[str]:
    from lightseg_cli.zoo import weights as store

    return sorted(p for p in store.manifest() if p.startswith("lpsnet/"))


def test_lpsnet_m_ships_with_the_package() -> None:
    from lightseg_cli.zoo import get_cfg
    from lightseg_cli.zoo import weights as store

    cfg = get_cfg("lpsnet-m")
    assert cfg.weights in _shipped_lpsnet()
    st = store.status_of(cfg)
    assert st.verified and st.found.is_relative_to(store.package_weights_dir())
    assert st.found.stat().st_size < 20 * 1024 * 1024


@pytest.mark.parametrize("weights", _shipped_lpsnet())
def test_shipped_lpsnet_weights_reproduce_their_model_card(cli, weights: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fp16 package weights, loaded with no download and no ../shared weights, score on CamVid val
    what training recorded for them (fp16 rounding aside), and are clearly a trained model."""
    from lightseg_cli.zoo import weights as store

    monkeypatch.delenv("LIGHTSEG_WEIGHTS", raising=False)
    camvid = need_shared("data", "camvid")
    recorded = torch.load(store.package_weights_dir() / weights, map_location="cpu", weights_only=True)["meta"]
    variant = weights.split("_")[1]
    r = cli("eval", "--model", f"lpsnet-{variant}", "--data", camvid / "val.txt", "--json")
    assert r.code == 0, r.err
    assert r.json()["images"] == 101
    assert r.json()["miou"] == pytest.approx(recorded["val_miou"], abs=0.005)
    assert r.json()["miou"] > 0.4


def test_shipped_lpsnet_m_labels_the_camvid_video(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own example, `lightseg run VIDEO --model lpsnet-m`, from the package weights alone."""
    monkeypatch.delenv("LIGHTSEG_WEIGHTS", raising=False)
    video = need_shared("video", "camvid_val_0016E5.mp4")
    r = cli("run", video, "--model", "lpsnet-m", "--frames", "12", "--save-masks", "--out", tmp_path / "v",
            "--json", "-q")
    assert r.code == 0, r.err
    assert r.json()["frames"] == 12
    frames, _, w, h = count_frames(tmp_path / "v" / "camvid_val_0016E5_overlay.mp4")
    assert frames == 12 and (w, h) == (480, 360)
    masks = sorted((tmp_path / "v" / "masks").glob("*.png"))
    assert len(masks) == 12
    mask = cv2.imread(str(masks[0]), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (360, 480) and mask.max() <= 10 and len(np.unique(mask)) >= 4


def test_init_from_a_checkpoint_starts_a_new_phase(mini_camvid, tmp_path: Path) -> None:
    train, val = mini_camvid
    first = Trainer(_cfg(train, val, tmp_path / "a", 1))
    first.fit()
    logs: list[str] = []
    second = Trainer(TrainCfg(model="lpsnet-s", data=str(train), val=None, out=str(tmp_path / "b"), epochs=1,
                              batch=4, size=(320, 240), init=str(tmp_path / "a" / "best.pth")), log=logs.append)
    assert any("initialised" in m for m in logs) and second.epoch == 0
    assert second.initialised_from.endswith(f"tensors from {tmp_path / 'a' / 'best.pth'}")
    a = first.model.state_dict()
    assert all(torch.equal(a[k].cpu(), v.cpu()) for k, v in second.model.state_dict().items())


def test_teacher_targets_averaged_over_mirrored_and_scaled_views(tmp_path: Path) -> None:
    """Averaging a teacher over its mirrored view makes its targets mirror-equivariant: the targets
    of a mirrored image are the mirrored targets of the image. One plain view keeps raw logits."""
    from lightseg_cli.train.distill import teacher_targets
    from lightseg_cli.zoo.datasets import CAMVID11


    img = cv2.cvtColor(cv2.imread(str(make_image(tmp_path / "scene.png", (200, 150), seed=3))), cv2.COLOR_BGR2RGB)
    cpu = torch.device("cpu")
    plain = teacher_targets("lpsnet-s", [img], CAMVID11, cpu)[0].astype(np.float32)
    both = teacher_targets("lpsnet-s", [img, np.ascontiguousarray(img[:, ::-1])], CAMVID11, cpu,
                           scales=(0.75, 1.0), flip=True)
    a, b = (t.astype(np.float32) for t in both)
    assert a.shape == (150, 200, 11)
    assert np.allclose(a, b[:, ::-1], atol=2e-2)  # float16 storage
    assert np.allclose(np.exp(a).sum(-1), 1.0, atol=2e-2)  # log of averaged probabilities
    assert not np.allclose(np.exp(plain).sum(-1), 1.0, atol=2e-2)  # a single view: the raw logits
    plain_mirrored = teacher_targets("lpsnet-s", [np.ascontiguousarray(img[:, ::-1])], CAMVID11, cpu)[0]
    assert not np.allclose(plain, plain_mirrored.astype(np.float32)[:, ::-1], atol=2e-2)
    # Cached targets are reused only for the same images and views.
    cache = tmp_path / "targets.npy"
    teacher_targets("lpsnet-s", [img], CAMVID11, cpu, cache=cache)
    cache.write_bytes(cache.read_bytes()[:-4] + bytes(4))  # poison the stored values to see where they come from
    reused = teacher_targets("lpsnet-s", [img], CAMVID11, cpu, cache=cache)[0]
    assert reused.shape == plain.shape and np.allclose(reused[:-1].astype(np.float32), plain[:-1], atol=1e-3)
    assert not np.array_equal(reused, plain.astype(np.float16))  # read back, not recomputed
    fresh = teacher_targets("lpsnet-s", [img], CAMVID11, cpu, flip=True, cache=cache)[0]
    assert np.allclose(np.exp(fresh.astype(np.float32)).sum(-1), 1.0, atol=2e-2)  # other views: recomputed


def test_an_ensemble_teacher_averages_its_members_probabilities_by_weight(tmp_path: Path) -> None:
    """Two teachers weighted 3:1 give the log of 0.75 and 0.25 of their own probabilities; the cache
    tells ensembles with other weights apart."""
    from lightseg_cli.errors import UsageError
    from lightseg_cli.train.distill import teacher_targets
    from lightseg_cli.zoo.datasets import CAMVID11

    img = cv2.cvtColor(cv2.imread(str(make_image(tmp_path / "scene.png", (200, 150), seed=4))), cv2.COLOR_BGR2RGB)
    cpu = torch.device("cpu")
    s, m = (torch.softmax(torch.from_numpy(teacher_targets(n, [img], CAMVID11, cpu)[0].astype(np.float32)), -1)
            for n in ("lpsnet-s", "lpsnet-m"))
    cache = tmp_path / "targets.npy"
    both = teacher_targets(["lpsnet-s", "lpsnet-m"], [img], CAMVID11, cpu, weights=(3, 1), cache=cache)[0]
    expected = (0.75 * s + 0.25 * m).log().numpy()
    assert both.shape == (150, 200, 11)
    assert np.abs(both.astype(np.float32) - expected).max() < 2e-2
    assert np.abs(expected - (0.5 * s + 0.5 * m).log().numpy()).max() > 0.1  # the weights matter here
    equal = teacher_targets(["lpsnet-s", "lpsnet-m"], [img], CAMVID11, cpu, cache=cache)[0]
    assert np.abs(equal.astype(np.float32) - (0.5 * s + 0.5 * m).log().numpy()).max() < 2e-2
    with pytest.raises(UsageError, match="one per teacher"):
        teacher_targets(["lpsnet-s", "lpsnet-m"], [img], CAMVID11, cpu, weights=(1,))


def test_a_teacher_of_another_label_space_teaches_through_its_class_map(shared_weights, tmp_path: Path) -> None:
    """The Cityscapes ESPNetv2 teaching a CamVid student gives what it predicts run as
    ``--classes-as camvid``: its CamVid labels, from targets with the student's 11 classes."""
    from lightseg_cli.infer.segmenter import Segmenter
    from lightseg_cli.train.distill import teacher_targets
    from lightseg_cli.zoo.classmap import classes_as
    from lightseg_cli.zoo.datasets import CAMVID11
    from lightseg_cli.zoo.local import get_cfg

    street = SHARED / "data" / "cityscapes-samples" / "frankfurt_000000_000294_leftImg8bit.png"
    img = cv2.resize(cv2.cvtColor(cv2.imread(str(street)), cv2.COLOR_BGR2RGB), (1024, 512))  # the teacher's size
    target = teacher_targets("espnetv2-s0.5-cityscapes", [img], CAMVID11, torch.device("cpu"))[0]
    assert target.shape == (512, 1024, 11)
    mapped = Segmenter(classes_as(get_cfg("espnetv2-s0.5-cityscapes"), "camvid"))
    labels = mapped.labels(mapped.infer(mapped.preprocess(mapped.to_device([img]))))[0]
    agree = (target.astype(np.float32).argmax(-1) == np.asarray(labels)).mean()
    assert agree > 0.99, agree
    assert len(np.unique(labels)) >= 5  # a street, not one class everywhere


def test_distillation_from_a_multi_view_teacher_runs_and_logs_its_views(cli, mini_camvid, tmp_path: Path) -> None:
    train, _ = mini_camvid
    out = tmp_path / "kd"
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", out, "--epochs", "1", "--batch", "4",
            "--size", "160x128", "--teacher", "lpsnet-m", "--teacher-scales", "0.5,1", "--teacher-flip")
    assert r.code == 0, r.err
    assert "240x180, 480x360, and mirrored" in r.err
    assert json.loads((out / "train_cfg.json").read_text())["teacher_flip"] is True
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["loss"])
    assert (out / "teacher_targets.npy").is_file()
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", out, "--epochs", "2", "--batch", "4",
            "--size", "160x128", "--teacher", "lpsnet-m", "--teacher-scales", "0.5,1", "--teacher-flip",
            "--resume", out / "last.pth")
    assert r.code == 0, r.err
    assert f"distillation targets from {out / 'teacher_targets.npy'}" in r.err and "computing" not in r.err
    # A trained checkpoint teaches at every scale too (each view is built from its path, not its name).
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "kd2", "--epochs", "1", "--batch", "4",
            "--size", "160x128", "--teacher", out / "last.pth", "--teacher-scales", "0.5,1")
    assert r.code == 0, r.err
    assert "computing kd/last's logits" in r.err and "80x64, 160x128)" in r.err
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "bad", "--teacher", "lpsnet-m",
            "--teacher-scales", "1,zero")
    assert r.code == 2 and "--teacher-scales" in r.err
    # An ensemble of two, weighted 3:1, with its members named in the log.
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "kd3", "--epochs", "1", "--batch", "4",
            "--size", "160x128", "--teacher", "lpsnet-m", "--teacher", out / "last.pth", "--teacher-weights", "3,1")
    assert r.code == 0, r.err
    assert "computing lpsnet-m-camvid + kd/last's logits" in r.err and "weighted 0.75:0.25" in r.err
    assert json.loads((tmp_path / "kd3" / "train_cfg.json").read_text())["teacher_weights"] == [3.0, 1.0]
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "bad", "--teacher", "lpsnet-m",
            "--teacher-weights", "1,-1")
    assert r.code == 2 and "--teacher-weights" in r.err


def _frames_folder(folder: Path, n: int) -> Path:
    for i in range(n):
        make_image(folder / f"frame{i}.png", (200, 150), seed=10 + i)
    (folder / "notes.txt").write_text("not an image")  # left out: only images and videos are read
    return folder


def test_distillation_on_unlabelled_video_and_folder_logs_records_and_resumes(cli, mini_camvid,
                                                                              tmp_path: Path) -> None:
    train, _ = mini_camvid
    video = make_video(tmp_path / "clip.mp4", frames=20)
    folder = _frames_folder(tmp_path / "frames", 3)
    out = tmp_path / "kd"
    args = ["train", "--model", "lpsnet-s", "--data", train, "--out", out, "--batch", "4", "--size", "160x128",
            "--teacher", "lpsnet-m", "--teacher-scales", "0.5", "--unlabelled", video, "--unlabelled", folder,
            "--unlabelled-stride", "4"]
    r = cli(*args, "--epochs", "1")
    assert r.code == 0, r.err
    assert f"5 frames from {video}, 1 frame in 4" in r.err and f"3 frames from {folder}" in r.err
    assert "added 8 unlabelled frames from 2 sources" in r.err
    assert "on 8 unlabelled frames for distillation" in r.err
    recorded = json.loads((out / "train_cfg.json").read_text())
    assert recorded["unlabelled"] == [str(video), str(folder)] and recorded["unlabelled_stride"] == 4
    assert recorded["unlabelled_frames"] == {str(video): 5, str(folder): 3}
    rows = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and np.isfinite(rows[0]["loss"])
    r = cli(*args, "--epochs", "2", "--resume", out / "last.pth")
    assert r.code == 0, r.err
    assert "computing" not in r.err
    for cache in ("teacher_targets.npy", "teacher_targets_unlabelled.npy"):
        assert f"distillation targets from {out / cache}" in r.err


def test_unlabelled_frames_train_on_the_teacher_alone(mini_camvid, tmp_path: Path) -> None:
    """An unlabelled frame's label is all ignore: cross-entropy (every kind) gives 0 and no gradient,
    the distillation loss covers the frame but not the crop's padding; a mixed batch's cross-entropy
    is that of its labelled images."""
    from lightseg_cli.train.losses import SegLoss, distillation_loss

    train, _ = mini_camvid
    t = Trainer(TrainCfg(model="lpsnet-s", data=str(train), val=None, out=str(tmp_path / "u"), epochs=1, batch=4,
                         size=(160, 128), input_size=(240, 176), scale=(0.5, 0.5), jitter=0.0, teacher=("lpsnet-m",),
                         teacher_scales=(0.5,), unlabelled=(str(_frames_folder(tmp_path / "frames", 4)),)))
    assert len(t.images) == 12 and len(t.labels) == 8
    x, y, soft, mask, _ = t._batch(0, 0, np.arange(8, 12))
    assert (y == 255).all() and soft is not None
    assert mask.sum((1, 2)).tolist() == [120 * 88] * 4  # the frame at half its 240x176 input size
    assert not soft.permute(0, 2, 3, 1)[~mask].any()  # padding: no teacher logits
    out = t.model(x)
    params = [p for p in t.model.parameters() if p.requires_grad]
    ces = [SegLoss(kind, 255, torch.ones(11) if kind == "weighted" else None)(out, y)
           for kind in ("ce", "ohem", "weighted")]
    assert [ce.item() for ce in ces] == [0.0] * 3
    grads = torch.autograd.grad(sum(ces), params, retain_graph=True, allow_unused=True)
    assert all(g is None or not g.any() for g in grads)
    total = t.loss(out, y, soft, mask)
    assert torch.isfinite(total) and total.item() == pytest.approx(distillation_loss(out.float(), soft, mask).item())
    assert any(g.any() for g in torch.autograd.grad(total, params))

    x, y, soft, mask, _ = t._batch(0, 0, np.array([0, 1, 8, 9]))
    out = t.model(x)
    assert torch.isfinite(t.loss(out, y, soft, mask))
    ce = SegLoss("ce", 255)
    assert torch.allclose(ce(out, y), ce(out[:2], y[:2]))


def test_unlabelled_without_a_teacher_is_a_usage_error(cli, mini_camvid, tmp_path: Path) -> None:
    from lightseg_cli.train.unlabelled import default_stride

    train, _ = mini_camvid
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "x", "--unlabelled", tmp_path)
    assert r.code == 2 and "--unlabelled needs --teacher" in r.err and len(r.err.strip().splitlines()) == 1, r.err
    assert [default_stride(n) for n in (None, 250, 300, 301, 1000)] == [1, 1, 1, 2, 4]


def test_cutmix_pastes_one_rectangle_of_another_image_with_all_its_targets() -> None:
    """Image i's pixels, label, teacher logits and mask in its pasted box all come from one other
    image of the batch; outside the box nothing changes; the box covers the asked-for area."""
    from lightseg_cli.train.mix import MixBatch, cutmix

    n, h, w, k = 6, 60, 80, 3
    ids = np.arange(n, dtype=np.uint8)[:, None, None]
    batch = MixBatch(images=np.repeat(np.broadcast_to(ids, (n, h, w))[..., None], 3, -1).astype(np.float32),
                     labels=np.broadcast_to(ids, (n, h, w)).copy(),
                     masks=np.broadcast_to(ids % 2 == 0, (n, h, w)).copy(),
                     soft=np.repeat(np.broadcast_to(ids, (n, h, w))[..., None], k, -1).astype(np.float32))
    before = {f: getattr(batch, f).copy() for f in ("images", "labels", "masks", "soft")}
    out = cutmix(batch, np.random.default_rng(3), prob=1.0, area=(0.2, 0.4))
    assert all(np.array_equal(getattr(batch, f), v) for f, v in before.items())  # the input is not written to
    partners = set()
    for i in range(n):
        pasted = out.labels[i] != i
        ys, xs = np.nonzero(pasted)
        assert pasted.sum() == (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # one filled rectangle
        assert 0.2 * h * w * 0.9 <= pasted.sum() <= 0.4 * h * w * 1.1
        (j,) = set(out.labels[i][pasted].tolist())
        partners.add(j)
        assert (out.images[i][pasted] == j).all() and (out.soft[i][pasted] == j).all()
        assert (out.masks[i][pasted] == (j % 2 == 0)).all() and (out.masks[i][~pasted] == (i % 2 == 0)).all()
        assert (out.images[i][~pasted] == i).all() and (out.soft[i][~pasted] == i).all()
    assert len(partners) == n  # a rotation of the batch: every image is pasted from exactly once
    assert cutmix(batch, np.random.default_rng(3), prob=0.0) is batch
    one = MixBatch(batch.images[:1], batch.labels[:1], batch.masks[:1])
    assert cutmix(one, np.random.default_rng(3), prob=1.0) is one


def test_cutmix_and_jitter_in_training_batches_and_on_the_command_line(cli, mini_camvid, tmp_path: Path) -> None:
    """``--cutmix`` mixes each step's batch reproducibly (the same step, the same batch); it and
    ``--jitter`` reach the run's record, and a run with them trains."""
    train, val = mini_camvid

    def trainer(p: float, out: str) -> Trainer:
        return Trainer(TrainCfg(model="lpsnet-s", data=str(train), val=None, out=str(tmp_path / out), epochs=1,
                                batch=4, size=(160, 128), jitter=0.0, cutmix=p))

    plain, mixed = trainer(0.0, "a")._batch(0, 0, np.arange(4)), trainer(1.0, "b")
    x, y, _, _, _ = mixed._batch(0, 0, np.arange(4))
    x2, y2, _, _, _ = mixed._batch(0, 0, np.arange(4))
    assert torch.equal(x, x2) and torch.equal(y, y2)
    changed = (x != plain[0]).any(1)
    assert changed.any() and all(changed[i].sum() < changed[i].numel() for i in range(4))
    assert torch.equal(y[~changed], plain[1][~changed])

    out = tmp_path / "run"
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", out, "--epochs", "1", "--batch", "4",
            "--size", "160x128", "--cutmix", "0.5", "--jitter", "0.5", "--json")
    assert r.code == 0, r.err
    record = json.loads((out / "train_cfg.json").read_text())
    assert record["cutmix"] == 0.5 and record["jitter"] == 0.5
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", out, "--cutmix", "1.5")
    assert r.code == 2 and "--cutmix" in r.err, r.err


def test_feature_distillation_from_an_imagenet_backbone(cli, mini_camvid, tmp_path: Path) -> None:
    """``--hint-teacher``: the student's projected backbone features move towards the ImageNet
    EfficientNet-Lite0's on the training crops; the projections resume with the run and stay out
    of the weights that ship; a student without backbone features is refused."""
    import importlib.metadata

    from lightseg_cli.errors import UsageError
    from lightseg_cli.zoo.backbones import BACKBONE_WEIGHTS, EXTRA_INSTALL

    try:
        importlib.metadata.distribution(BACKBONE_WEIGHTS["efficientnet-lite0-imagenet"].package)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"the ImageNet weights are not installed ({EXTRA_INSTALL})")
    train, val = mini_camvid

    def cfg(out: str, epochs: int) -> TrainCfg:
        return TrainCfg(model="ghostnet-camvid", data=str(train), val=None, out=str(tmp_path / out), epochs=epochs,
                        batch=4, size=(160, 128), scale=(1.0, 1.0), jitter=0.0, lr=3e-3, warmup_epochs=0,
                        loss="ce", pretrained=False, hint_teacher="efficientnet-lite0", hint_weight=1.0)

    torch.manual_seed(0)
    t = Trainer(cfg("run", 6))
    x, _, _, _, hint_x = t._batch(0, 0, np.arange(4))
    assert hint_x is not None and hint_x.shape == x.shape

    def distance() -> float:
        with torch.no_grad():
            t.model.eval()
            d = float(t.hints.loss(t.net.forward_features(x)[1], hint_x))  # type: ignore[union-attr]
            t.model.train()
            return d

    before = distance()
    t.fit(stop_after=3)
    resumed = Trainer(cfg("run", 6))
    resumed.resume(tmp_path / "run" / "last.pth")
    for a, b in zip(t.hints.proj.parameters(), resumed.hints.proj.parameters()):  # type: ignore[union-attr]
        assert torch.equal(a, b)
    t.fit()
    assert distance() < before * 0.8
    shipped = torch.load(tmp_path / "run" / "best.pth", map_location="cpu", weights_only=True)
    assert not any(k.startswith(("proj", "teacher")) for k in shipped["state_dict"])
    assert "hint_projections" in torch.load(tmp_path / "run" / "last.pth", map_location="cpu", weights_only=True)

    with pytest.raises(UsageError, match="backbone"):
        Trainer(replace(cfg("lps", 1), model="lpsnet-s"))
    r = cli("train", "--model", "ghostnet-camvid", "--scratch", "--data", train, "--out", tmp_path / "cli",
            "--hint-teacher", "ghostnet-camvid", "--epochs", "1")
    assert r.code == 2 and "no pre-trained backbone" in r.err, r.err


def test_a_slower_encoder_learning_rate_holds_the_pretrained_part(cli, mini_camvid, tmp_path: Path) -> None:
    """``--encoder-lr F``: the encoder's parameters follow F times the schedule's learning rate (at 0
    they stay exactly as they started while the head trains), the groups resume with the run, and a
    network with no encoder is refused."""
    from lightseg_cli.errors import UsageError

    train, _ = mini_camvid

    def cfg(model: str, out: str, encoder_lr: float) -> TrainCfg:
        return TrainCfg(model=model, data=str(train), val=None, out=str(tmp_path / out), epochs=2, batch=4,
                        size=(160, 128), scale=(1.0, 1.0), jitter=0.0, lr=3e-3, warmup_epochs=0, loss="ce",
                        pretrained=False, encoder_lr=encoder_lr)

    t = Trainer(cfg("ghostnet-camvid", "frozen", 0.0))
    start = {k: v.clone() for k, v in t.net.named_parameters()}
    t.fit(stop_after=1)
    moved = {k for k, v in t.net.named_parameters() if not torch.equal(v, start[k])}
    assert moved and all(k.startswith("head.") for k in moved)
    assert {g["lr"] for g in t.opt.param_groups if g["lr_scale"] == 0.0} == {0.0}
    resumed = Trainer(cfg("ghostnet-camvid", "frozen", 0.0))
    resumed.resume(tmp_path / "frozen" / "last.pth")
    assert [g["lr_scale"] for g in resumed.opt.param_groups] == [g["lr_scale"] for g in t.opt.param_groups]

    v2 = Trainer(cfg("espnetv2-s0.5-cityscapes", "v2", 0.1))
    slow = {id(p) for g in v2.opt.param_groups if g["lr_scale"] == 0.1 for p in g["params"]}
    assert slow == {id(p) for p in v2.net.base_net.parameters()}  # type: ignore[union-attr]
    with pytest.raises(UsageError, match="no pre-trained encoder"):
        Trainer(cfg("lpsnet-s", "lps", 0.5))
    r = cli("train", "--model", "lpsnet-s", "--data", train, "--out", tmp_path / "cli", "--encoder-lr", "0.5")
    assert r.code == 2 and "no pre-trained encoder" in r.err, r.err
