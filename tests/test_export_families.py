"""Every network family in the zoo exports to ONNX and agrees with torch (ONNX Runtime, real image)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lightseg_cli.models.layers import resize_antialiased
from lightseg_cli.zoo import list_models

pytest.importorskip("onnxruntime")

# One model per architecture; LPS-Net ships with the package, the authors' models need ../shared.
_FAMILIES = {cfg.arch: cfg.name for cfg in reversed(list_models())}


@pytest.mark.parametrize("arch", sorted(_FAMILIES))
def test_every_family_exports_and_matches_torch(cli, tmp_path: Path, arch: str) -> None:
    name = _FAMILIES[arch]
    out = tmp_path / f"{arch}.onnx"
    r = cli("export", "--model", name, "--size", "320x240", "--out", out, "--json")
    if r.code == 3 and "this release has no weights" in r.err:
        _export_the_untrained_network(name, out)  # nothing to export through the CLI: test the graph itself
        return
    if r.code == 3 and "not found" in r.err:
        pytest.skip(f"{name}: weights absent ({r.err.strip()})")
    assert r.code == 0, r.err
    assert out.is_file()
    assert r.json()["label_agreement"] >= 0.999


def _export_the_untrained_network(name: str, out: Path) -> None:
    """A family whose weights this release does not ship: its network with random weights and batch-norm
    statistics (an untrained network labels a real image with one or two classes, so labels would
    prove little) exports, and ONNX Runtime's logits equal torch's."""
    from lightseg_cli.infer.export import check_image, export_onnx, ort_session
    from lightseg_cli.infer.preprocess import Normalizer, fit_size
    from lightseg_cli.models.layers import fuse_for_inference
    from lightseg_cli.zoo import get_cfg
    from lightseg_cli.zoo.registry import build_model

    torch.manual_seed(0)
    cfg = get_cfg(name)
    net = build_model(cfg)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    fuse_for_inference(net)
    size = fit_size((320, 240), cfg.size_divisor)
    export_onnx(net, cfg, size, out)
    x = Normalizer(cfg.preprocess, size, torch.device("cpu"), torch.float32)(torch.from_numpy(check_image())[None])
    with torch.no_grad():
        ref = net(x).numpy()
    got = ort_session(out, torch.device("cpu")).run(None, {"input": x.numpy()})[0]
    assert got.shape == ref.shape
    assert abs(got - ref).max() <= 1e-3 * max(1.0, abs(ref).max())


@pytest.mark.parametrize(("src", "dst"), [((512, 1024), (128, 256)), ((360, 480), (270, 360)),
                                          ((359, 481), (89, 120)), ((64, 64), (128, 96))])
def test_exportable_antialiased_resize_is_torchs_filter(src, dst) -> None:
    x = torch.rand(1, 3, *src) * 4 - 2
    ref = F.interpolate(x, dst, mode="bilinear", antialias=True, align_corners=False)
    traced = torch.jit.trace(lambda t: resize_antialiased(t, dst), x)  # tracing takes the export path
    # PyTorch's kernel rounds its filter weights in float32 (weights differ by up to ~1.5e-5).
    assert torch.allclose(traced(x), ref, atol=2e-4)
    if dst[0] < src[0]:  # shrinking: not the plain bilinear filter
        plain = F.interpolate(x, dst, mode="bilinear", align_corners=False)
        assert not torch.allclose(traced(x), plain, atol=2e-4)
