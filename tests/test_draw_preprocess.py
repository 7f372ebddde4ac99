"""The overlay and preprocessing paths: the GPU (tensor) code paths run on CPU tensors here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightseg_cli.draw.overlay import Overlay, OverlayStyle
from lightseg_cli.infer.preprocess import Normalizer, fit_size
from lightseg_cli.zoo import get_cfg
from lightseg_cli.zoo.datasets import CITYSCAPES

from .conftest import need_shared


def _scene(h: int = 120, w: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    labels = np.zeros((h, w), np.uint8)
    labels[: h // 3] = 10  # sky
    labels[h // 3 : 2 * h // 3] = 2  # building
    labels[2 * h // 3 :] = 0  # road
    labels[50:70, 80:120] = 13  # car
    return frame, labels


def test_tensor_and_opencv_blends_agree() -> None:
    frame, labels = _scene()
    ov = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle(alpha=0.6, legend=False))
    host = ov.annotate_np(frame, labels)
    dev = ov.annotate_tensor(torch.from_numpy(frame)[None], torch.from_numpy(labels)[None])[0]
    assert np.abs(host.astype(int) - dev.astype(int)).max() <= 1
    # A car pixel really is blended: 60% car colour, 40% frame.
    want = np.round(0.4 * frame[60, 100] + 0.6 * np.array(CITYSCAPES.palette[13]))
    assert np.abs(host[60, 100].astype(int) - want).max() <= 1


def test_only_chosen_classes_are_drawn_and_modes() -> None:
    frame, labels = _scene()
    ov = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle(classes=(13,), legend=False))
    out = ov.annotate_np(frame, labels)
    assert (out[labels != 13] == frame[labels != 13]).all()
    assert not (out[labels == 13] == frame[labels == 13]).all()
    dev = ov.annotate_tensor(torch.from_numpy(frame)[None], torch.from_numpy(labels)[None])[0]
    assert (dev[labels != 13] == frame[labels != 13]).all()
    side = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle(mode="side-by-side", legend=False))
    assert side.annotate_np(frame, labels).shape == (120, 400, 3)
    mask = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle(mode="mask", legend=False))
    assert (mask.annotate_np(frame, labels)[0, 0] == CITYSCAPES.palette[10]).all()


def test_legend_lists_the_classes_in_view() -> None:
    frame, labels = _scene()
    plain = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle(legend=False)).annotate_np(frame, labels)
    with_legend = Overlay(CITYSCAPES.palette, CITYSCAPES.classes, OverlayStyle()).annotate_np(frame, labels)
    changed = np.any(plain != with_legend, axis=2)
    assert changed[:60, :100].any() and not changed[:, 150:].any()


def test_gpu_style_float_resize_matches_the_uint8_path() -> None:
    cfg = get_cfg("espnetv2-s2.0-cityscapes")
    frame = np.random.default_rng(1).integers(0, 256, (540, 960, 3), dtype=np.uint8)
    a = Normalizer(cfg.preprocess, (512, 256), torch.device("cpu"), torch.float32)
    b = Normalizer(cfg.preprocess, (512, 256), torch.device("cpu"), torch.float32)
    b.uint8_resize = False  # what a CUDA device runs
    x, y = a(torch.from_numpy(frame)[None]), b(torch.from_numpy(frame)[None])
    step = 1 / min(cfg.preprocess.std)  # one grey level after normalisation
    assert x.shape == y.shape == (1, 3, 256, 512)
    assert (torch.abs(x - y) <= step * 1.01).float().mean() >= 0.999


def test_bgr_models_see_bgr() -> None:
    cfg = get_cfg("espnet-cityscapes")
    frame = np.zeros((64, 128, 3), np.uint8)
    frame[..., 0] = 200  # red in RGB
    x = Normalizer(cfg.preprocess, (128, 64), torch.device("cpu"), torch.float32)(torch.from_numpy(frame)[None])
    mean, std = cfg.preprocess.mean, cfg.preprocess.std
    assert torch.allclose(x[0, 2], torch.full((64, 128), (200 - mean[2]) / std[2]), atol=1e-5)  # R is last
    assert torch.allclose(x[0, 0], torch.full((64, 128), (0 - mean[0]) / std[0]), atol=1e-5)


@pytest.mark.parametrize("name", ["lpsnet-m-camvid", "espnet-camvid"])  # RGB and BGR specs
def test_normalising_channels_last_rows_gives_the_per_channel_formula_exactly(name: str) -> None:
    spec = get_cfg(name).preprocess
    norm = Normalizer(spec, (96, 64), torch.device("cpu"), torch.float32)
    x = torch.randint(0, 256, (2, 3, 64, 97), dtype=torch.uint8).float()
    for layout in (torch.channels_last, torch.contiguous_format):  # frames / training crops
        x = x.contiguous(memory_format=layout)
        want = (x.flip(1) if spec.order == "bgr" else x) * norm.scale + norm.shift
        got = norm.normalize(x)
        assert torch.equal(got, want)
        assert got.is_contiguous(memory_format=layout)


def test_sizes_round_to_the_model_multiple() -> None:
    assert fit_size((1000, 500), 16) == (992, 496)
    assert fit_size((960, 540), 8) == (960, 544)
    assert fit_size((481, 361), 1) == (481, 361)


def test_resized_argmax_is_the_exact_bilinear_argmax() -> None:
    import torch.nn.functional as F

    from lightseg_cli.infer.labels import resized_argmax

    g = torch.Generator().manual_seed(0)
    # Smooth logits (like a network's) at a low resolution, resized up, down and sideways.
    logits = F.interpolate(torch.randn(2, 7, 9, 13, generator=g), size=(37, 51), mode="bilinear")
    for hw in [(111, 153), (20, 30), (37, 51), (540, 960), (41, 49)]:
        exact = F.interpolate(logits, size=hw, mode="bilinear", align_corners=False).argmax(1)
        fast = resized_argmax(logits, hw)
        assert fast.dtype == torch.uint8 and fast.shape == (2, *hw)
        assert (fast.long() == exact).float().mean() >= 0.9999


@pytest.mark.parametrize("name, size", [("espnetv2-s0.5-cityscapes", (512, 256)), ("espnet-c-cityscapes", (512, 256)),
                                        ("lpsnet-m", (480, 352))])
def test_skipping_the_final_logit_resize_gives_the_same_labels(name: str, size: tuple[int, int]) -> None:
    """The torch backend drops a network's last bilinear resize; labels sampled from the low-res
    logits equal those of the whole network (torch-plain keeps it), on the default (nearest) and
    the exact path, at the network size and at other frame sizes."""
    import av

    from lightseg_cli.infer.segmenter import Segmenter

    video = need_shared("video", "solidWhiteRight.mp4")
    with av.open(str(video)) as c:
        frame = next(iter(c.decode(video=0))).to_ndarray(format="rgb24")
    fast = Segmenter(name, size=size)
    full = Segmenter(name, size=size, backend="torch-plain")
    assert fast.logit_resize is not None and full.logit_resize is None
    with torch.inference_mode():
        t = fast.to_device([frame])
        low, ref = fast.infer(fast.preprocess(t)), full.infer(full.preprocess(t))
        assert low.shape[2] < ref.shape[2] and tuple(ref.shape[2:]) == (size[1], size[0])
        assert torch.allclose(fast.full_logits(low), ref, atol=1e-3)
        for hw, exact in [((540, 960), False), ((540, 960), True), ((size[1], size[0]), False), ((200, 300), False)]:
            a, b = fast.labels(low, hw, exact), full.labels(ref, hw, exact)
            assert a.shape == b.shape == (1, *hw)
            assert (a == b).float().mean() >= 0.9999, (name, hw, exact)
