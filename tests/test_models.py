"""Network fidelity against the authors' golden outputs, strict loading, and model shapes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from lightseg_cli.models.espnet import ESPNet
from lightseg_cli.models.layers import fold_batchnorm
from lightseg_cli.models.lpsnet import CONFIGS, LPSNet
from lightseg_cli.zoo import create_model, get_cfg, list_models, resolve_name
from lightseg_cli.zoo.registry import UnknownModelError, build_model

from .conftest import need_shared


@pytest.mark.parametrize(
    "golden, model",
    [
        ("espnetv2_s2.0_city_frankfurt_000000_000294_leftImg8bit", "espnetv2-s2.0-cityscapes"),
        ("espnetv2_s2.0_city_frankfurt_000000_000576_leftImg8bit", "espnetv2-s2.0-cityscapes"),
        ("espnetv2_s2.0_pascal_sample5", "espnetv2-s2.0-voc"),
        ("espnetv2_s2.0_pascal_sample11", "espnetv2-s2.0-voc"),
        ("espnetv2_s2.0_pascal_sample13", "espnetv2-s2.0-voc"),
    ],
)
def test_espnetv2_network_matches_golden_on_reference_inputs(golden: str, model: str) -> None:
    ref = need_shared("reference")
    x = torch.from_numpy(np.load(ref / f"{golden}_input.npy"))[None]
    want = cv2.imread(str(ref / f"{golden}.png"), cv2.IMREAD_UNCHANGED)
    net, _ = create_model(model)
    with torch.inference_mode():
        got = net(x)[0].argmax(0).numpy()
    assert got.shape == want.shape
    assert (got == want).mean() >= 0.999


def _espnet_input(path, mean, std, size=None) -> torch.Tensor:
    img = cv2.imread(str(path)).astype(np.float32)
    img = (img - np.array(mean, np.float32)) / np.array(std, np.float32)
    if size:
        img = cv2.resize(img, size)
    return torch.from_numpy((img / 255).transpose(2, 0, 1).copy())[None]


@pytest.mark.parametrize("stem", ["000294", "000576"])
def test_espnet_cityscapes_matches_golden(stem: str) -> None:
    ref = need_shared("reference")
    img = need_shared("data", "cityscapes-samples", f"frankfurt_000000_{stem}_leftImg8bit.png")
    x = _espnet_input(img, (72.3923111, 82.90893555, 73.15840149), (45.3192215, 46.15289307, 44.91483307),
                      (1024, 512))
    want = cv2.imread(str(ref / f"espnet_p2q8_cityscapes_frankfurt_000000_{stem}_leftImg8bit.png"), 0)
    net, _ = create_model("espnet-cityscapes")
    with torch.inference_mode():
        got = net(x)[0].argmax(0).numpy()
    assert (got == want).mean() >= 0.999


@pytest.mark.parametrize("stem", ["07959", "08019", "08159"])
def test_espnet_camvid_training_variant_matches_golden(stem: str) -> None:
    ref = need_shared("reference")
    img = need_shared("data", "camvid", "val", f"0016E5_{stem}.png")
    x = _espnet_input(img, (110.3310546875, 108.40888977050781, 105.03321838378906),
                      (72.12568664550781, 72.69076538085938, 69.90434265136719))
    want = cv2.imread(str(ref / f"espnet_p2q8_camvid_0016E5_{stem}.png"), 0)
    net, _ = create_model("espnet-camvid")
    with torch.inference_mode():
        got = net(x)[0].argmax(0).numpy()
    assert (got == want).mean() >= 0.999


def test_every_authors_checkpoint_loads_strictly(shared_weights) -> None:
    from lightseg_cli.zoo import weights as store

    loaded = 0
    for cfg in list_models():
        wf = store.manifest().get(cfg.weights)
        if wf is None or not wf.url:  # lightseg's own weights (shipped, or not released yet)
            continue
        net = build_model(cfg)
        sd = torch.load(shared_weights / cfg.weights, map_location="cpu", weights_only=True)
        net.load_state_dict(sd, strict=True)  # raises on any missing or unexpected key
        loaded += 1
    assert loaded == 19


def test_espnet_camvid_checkpoint_does_not_fit_the_test_variant(shared_weights) -> None:
    sd = torch.load(shared_weights / "espnet/espnet_p_2_q_8_camvid.pth", map_location="cpu", weights_only=True)
    with pytest.raises(RuntimeError):
        ESPNet(12, 2, 8, decoder_skip="level1").load_state_dict(sd, strict=True)


@pytest.mark.parametrize("name", ["espnet-cityscapes", "espnetv2-s1.0-cityscapes", "lpsnet-m-camvid"])
def test_folding_batchnorm_keeps_outputs(name: str) -> None:
    torch.manual_seed(0)
    net = build_model(get_cfg(name))
    for m in net.modules():  # non-trivial statistics so folding has something to do
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(1, 3, 128, 256)
    with torch.inference_mode():
        before = net(x)
        assert fold_batchnorm(net) > 0
        after = net(x)
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("variant", ["s", "m", "l"])
@pytest.mark.parametrize("size", [(481, 361), (480, 360), (97, 65)])
def test_lpsnet_returns_input_size_logits(variant: str, size: tuple[int, int]) -> None:
    net = LPSNet(11, CONFIGS[variant]).eval()
    w, h = size
    with torch.inference_mode():
        out = net(torch.randn(1, 3, h, w))
    assert out.shape == (1, 11, h, w)


@pytest.mark.parametrize("variant", ["s", "m", "l"])
def test_lpsnet_paths_read_the_image_at_their_ratios(variant: str) -> None:
    """Each path reads the image at its own resolution ratio (largest first), its five stages end at
    1/16 of that, and the shipped weights load strictly into the network the configuration builds."""
    cfg = CONFIGS[variant]
    net, _ = create_model(f"lpsnet-{variant}", fold_bn=False)  # the package's own weights, strict
    seen: list[tuple[str, tuple[int, ...]]] = []
    for path in net.paths:
        path[0].register_forward_hook(lambda m, i, o: seen.append(("in", tuple(i[0].shape[2:]))))
        path[4].register_forward_hook(lambda m, i, o: seen.append(("out", tuple(o.shape[2:]))))
    h, w = 352, 480
    with torch.inference_mode():
        net(torch.randn(1, 3, h, w))
    ratios = sorted(cfg.ratios, reverse=True)
    ins = [size for kind, size in seen if kind == "in"]
    outs = [size for kind, size in seen if kind == "out"]
    assert ins == [(int(h * r), int(w * r)) for r in ratios]
    assert outs == [(-(-a // 16), -(-b // 16)) for a, b in ins]
    convs = [m for m in net.paths[0].modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == sum(cfg.depth) and all(c.kernel_size == (3, 3) for c in convs)


def test_names_resolve_in_one_place() -> None:
    assert resolve_name("espnetv2-s2-city") == "espnetv2-s2.0-cityscapes"
    assert resolve_name("ESPNETV2_S0.5_PASCAL") == "espnetv2-s0.5-voc"
    assert resolve_name("lpsnet-m") == "lpsnet-m-camvid"
    with pytest.raises(UnknownModelError, match="ambiguous"):
        resolve_name("espnetv2-s2.0")
    with pytest.raises(UnknownModelError, match="unknown model"):
        resolve_name("deeplab")


def test_zoo_entries_carry_their_metadata() -> None:
    from lightseg_cli.zoo import weights as store

    for cfg in list_models():
        wf = store.manifest().get(cfg.weights)
        if wf is None:  # weights lightseg trains and has not released yet (running it says how to train it)
            assert "by lightseg" in cfg.description, cfg.name
        elif wf.url:  # the authors' weights, downloaded on demand
            assert len(wf.sha256) == 64 and wf.url.startswith("https://github.com/sacmehta/") and "MIT" in wf.license
        else:  # trained by lightseg and shipped in the package
            assert len(wf.sha256) == 64 and "lightseg" in wf.license


def test_models_json_lists_the_zoo_with_costs_and_weights(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    from lightseg_cli.zoo import weights as store

    monkeypatch.delenv("LIGHTSEG_WEIGHTS", raising=False)  # only the package's weights and an empty cache
    r = cli("models", "--json")
    assert r.code == 0, r.err
    rows = {row["name"]: row for row in r.json()}
    assert set(rows) == {c.name for c in list_models()}
    for v in "sml":
        row = rows[f"lpsnet-{v}-camvid"]
        assert row["weights_present"] and row["weights_verified"]
        assert Path(row["weights_path"]).is_relative_to(store.package_weights_dir())
        net = build_model(get_cfg(f"lpsnet-{v}"))
        assert row["params_m"] == round(sum(p.numel() for p in net.parameters()) / 1e6, 3)
    assert rows["lpsnet-s-camvid"]["gflops"] < rows["lpsnet-m-camvid"]["gflops"] < rows["lpsnet-l-camvid"]["gflops"]
    # the same network at a quarter of the pixels costs about a quarter
    big, small = rows["espnetv2-s2.0-cityscapes"], rows["espnetv2-s2.0-cityscapes-512x256"]
    assert big["params_m"] == small["params_m"] and 3.5 < big["gflops"] / small["gflops"] < 4.5
    author = rows["espnet-camvid"]
    assert not author["weights_present"] and author["weights_path"] is None and "MIT" in author["license"]
    r = cli("models", "lpsnet*", "--json")
    assert r.code == 0 and {row["name"] for row in r.json()} == {"lpsnet-s-camvid", "lpsnet-m-camvid",
                                                                 "lpsnet-l-camvid"}
