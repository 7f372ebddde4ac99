"""The postprocess (labels -> overlay) against straightforward implementations of the old default
path, on frames of a real video: the labels must be identical, the overlay pixels within 1."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
import torch

from lightseg_cli.draw import overlay as overlay_mod
from lightseg_cli.draw.overlay import Overlay, OverlayStyle
from lightseg_cli.infer.labels import (
    nearest_exact,
    sampled_argmax,
    sampled_argmax_device,
    source_positions,
    taps,
)
from lightseg_cli.infer.segmenter import Segmenter

from .conftest import need_shared


# ---- the old default path, written out plainly -------------------------------------------------
def old_sampled_argmax(logits: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """The arg-max of the logits bilinearly sampled at every (ys, xs), one tap per output pixel
    (the labels of lightseg before the postprocess was made proportional to the output)."""
    h, w = logits.shape[2:]
    low = logits.argmax(1).to(torch.uint8)
    right = torch.cat([low[:, :, 1:], low[:, :, -1:]], 2)
    down = torch.cat([low[:, 1:], low[:, -1:]], 1)
    diag = torch.cat([right[:, 1:], right[:, -1:]], 1)
    mixed = (low != right) | (low != down) | (low != diag)
    y0, y1, ly = taps(ys, h)
    x0, x1, lx = taps(xs, w)
    out = low[:, y0][:, :, x0]
    bi, by, bx = torch.nonzero(mixed[:, y0][:, :, x0], as_tuple=True)
    if bi.numel():
        lg = logits.permute(0, 2, 3, 1)
        wy, wx = ly[by, None].to(lg.dtype), lx[bx, None].to(lg.dtype)
        top = lg[bi, y0[by], x0[bx]] * (1 - wx) + lg[bi, y0[by], x1[bx]] * wx
        bottom = lg[bi, y1[by], x0[bx]] * (1 - wx) + lg[bi, y1[by], x1[bx]] * wx
        out[bi, by, bx] = (top * (1 - wy) + bottom * wy).argmax(1).to(torch.uint8)
    return out


def old_labels(seg: Segmenter, logits: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """The old default: every frame pixel sampled from the low-res logits where the nearest resize of
    the network-size labels would have taken it."""
    (h, w), dev, ac = logits.shape[2:], logits.device, seg.logit_resize.align_corners
    net_h, net_w = seg.size[1], seg.size[0]
    ys = source_positions(h, net_h, ac, dev)[nearest_exact(net_h, out_hw[0], dev)]
    xs = source_positions(w, net_w, ac, dev)[nearest_exact(net_w, out_hw[1], dev)]
    return old_sampled_argmax(logits, ys, xs)


def old_overlay(ov: Overlay, frame: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The old host overlay: 3-channel LUT, addWeighted, masked copy for --classes, legend row by row."""
    lut = np.ascontiguousarray(ov.lut.reshape(256, 1, 3))
    color = cv2.LUT(cv2.merge([labels, labels, labels]), lut)
    st = ov.style
    if st.mode == "mask":
        out = color
    else:
        out = cv2.addWeighted(frame, 1.0 - st.alpha, color, st.alpha, 0.0)
        if not ov.all_drawn:
            np.copyto(out, frame, where=~ov.drawn[labels][..., None])
        if st.mode == "side-by-side":
            out = np.concatenate([frame, out], axis=1)
    if st.legend:
        counts = np.bincount(labels[::4, ::4].reshape(-1), minlength=256)
        total = max(int(counts.sum()), 1)
        present = [c for c in np.nonzero(counts)[0] if counts[c] / total >= 0.005 and ov.drawn[c]
                   and c < len(ov.names)]
        h = max(14, min(28, out.shape[0] // 30))
        y = 4
        for c in present:
            row = overlay_mod._legend_row(ov.names[c], tuple(int(v) for v in ov.lut[c]), h)
            rh, rw = row.shape[:2]
            if y + rh > out.shape[0] or 4 + rw > out.shape[1]:
                break
            region = out[y : y + rh, 4 : 4 + rw]
            cv2.addWeighted(region, 0.25, row, 0.75, 0.0, dst=region)
            y += rh
    return out


# ---- real frames ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def clip() -> tuple[Segmenter, list[np.ndarray], list[torch.Tensor]]:
    """lpsnet-m (shipped) at 480x360 and its low-res logits on 8 frames of solidWhiteRight.mp4."""
    video = need_shared("video", "solidWhiteRight.mp4")
    seg = Segmenter("lpsnet-m", size=(480, 360))
    assert seg.logit_resize is not None  # the default path: the network's last resize is skipped
    frames, logits = [], []
    with av.open(str(video)) as c, torch.inference_mode():
        for i, f in enumerate(c.decode(video=0)):
            if i % 27:
                continue
            img = f.to_ndarray(format="rgb24")
            frames.append(img)
            logits.append(seg.infer(seg.preprocess(seg.to_device([img]))))
            if len(frames) == 8:
                break
    assert frames[0].shape == (540, 960, 3)
    return seg, frames, logits


def test_labels_equal_the_old_default_path_on_a_real_video(clip) -> None:
    seg, frames, logits = clip
    with torch.inference_mode():
        for lg in logits:
            # The frame size (upsampled: network-size labels repeated), the network size, and
            # smaller or mixed sizes (sampled directly), and a batch.
            for hw in [(540, 960), (360, 480), (270, 320), (540, 400), (200, 1280)]:
                new, old = seg.labels(lg, hw), old_labels(seg, lg, hw)
                assert new.shape == (1, *hw) and new.dtype == torch.uint8
                assert torch.equal(new, old), hw
            low = lg.argmax(1)
            assert (low[:, :, 1:] != low[:, :, :-1]).any()  # class boundaries: the interpolation is exercised
        batch = torch.cat(logits[:3])
        assert torch.equal(seg.labels(batch, (540, 960)), old_labels(seg, batch, (540, 960)))


@pytest.mark.parametrize("style", [
    OverlayStyle(),
    OverlayStyle(alpha=0.3, legend=False),
    OverlayStyle(classes=(0, 3, 8)),  # --classes sky,road,car
    OverlayStyle(mode="side-by-side"),
    OverlayStyle(mode="mask"),
])
def test_overlay_is_within_one_of_the_old_blend(clip, style: OverlayStyle) -> None:
    seg, frames, logits = clip
    ov = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, style)
    for frame, lg in zip(frames, logits):
        with torch.inference_mode():
            labels = seg.labels(lg, frame.shape[:2])[0].numpy()
        new, old = ov.annotate_np(frame, labels), old_overlay(ov, frame, labels)
        assert new.shape == old.shape and new.dtype == np.uint8
        assert np.abs(new.astype(int) - old.astype(int)).max() <= 1
    if style.classes is not None:
        shown = ~ov.drawn[labels]
        assert (new[shown] == frame[shown]).all()  # the other classes show the frame as it is


@pytest.mark.parametrize("style", [
    OverlayStyle(),
    OverlayStyle(alpha=0.3, legend=False),
    OverlayStyle(classes=(0, 3, 8)),
    OverlayStyle(mode="side-by-side"),
    OverlayStyle(mode="mask"),
])
@pytest.mark.parametrize("crop", [(540, 960), (539, 957)])
def test_the_i420_overlay_is_the_rgb_overlay_converted(clip, style: OverlayStyle, crop: tuple[int, int]) -> None:
    """The overlay drawn on I420 planes for the encoder is the RGB overlay as OpenCV converts it for
    the encoder, within 1 on every plane (odd sides lose their last row or column, as there)."""
    seg, frames, logits = clip
    ov = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, style)
    h, w = crop
    for frame, lg in zip(frames, logits):
        with torch.inference_mode():
            labels = seg.labels(lg, frame.shape[:2])[0].numpy()[:h, :w]
        frame = frame[:h, :w]
        new = ov.annotate_i420(frame[None], labels[None])[0]
        even = (slice(0, h & ~1), slice(0, w & ~1))
        old = cv2.cvtColor(np.ascontiguousarray(ov.annotate_np(frame[even], labels[even])), cv2.COLOR_RGB2YUV_I420)
        assert new.shape == old.shape and new.dtype == np.uint8
        assert np.abs(new.astype(int) - old.astype(int)).max() <= 1
        if style.mode != "side-by-side":  # so the frame itself would not pass
            plain = cv2.cvtColor(np.ascontiguousarray(frame[even]), cv2.COLOR_RGB2YUV_I420)
            assert np.abs(new.astype(int) - plain).mean() > 5


def test_legend_is_rendered_once_per_set_of_classes(clip, monkeypatch: pytest.MonkeyPatch) -> None:
    seg, frames, logits = clip
    rendered: list[str] = []
    real = overlay_mod._legend_row
    monkeypatch.setattr(overlay_mod, "_legend_row", lambda name, *a: rendered.append(name) or real(name, *a))
    ov = Overlay(seg.cfg.dataset.palette, seg.cfg.dataset.classes, OverlayStyle())
    with torch.inference_mode():
        labels = [seg.labels(lg, f.shape[:2])[0].numpy() for f, lg in zip(frames, logits)]
    for _ in range(3):
        for f, lab in zip(frames, labels):
            ov.annotate_np(f, lab)
    sets = {k[0] for k, v in ov._legends.items()}
    assert sets and len(rendered) == sum(len(s) for s in sets)  # each row drawn once per set in view


def test_the_device_repeat_is_the_host_repeat() -> None:
    """On a GPU the uint8 repeat is index_select on the device; on the CPU a NumPy gather: the same."""
    from lightseg_cli.infer.labels import repeat_labels

    lab = torch.randint(0, 19, (2, 36, 48), dtype=torch.uint8)
    rows, cols = nearest_exact(36, 54, torch.device("cpu")), nearest_exact(48, 96, torch.device("cpu"))
    want = lab[:, rows][:, :, cols]
    assert torch.equal(repeat_labels(lab, rows, cols), want)
    assert torch.equal(repeat_labels(lab, rows.numpy(), cols.numpy()), want)
    assert torch.equal(repeat_labels(lab, None, cols.numpy()), lab[:, :, cols])
    assert repeat_labels(lab, None, None) is lab


def test_the_device_labels_are_the_host_labels(clip) -> None:
    """On a GPU the boundary samples are gathered by torch ops, on the CPU by NumPy: the same labels
    (the torch path runs on CPU tensors here), one image and a batch of three, up- and downsampled."""
    seg, _, logits = clip
    batch = torch.cat(logits[:3])
    h, w = batch.shape[2:]
    cpu = torch.device("cpu")
    for out_h, out_w in [(360, 480), (540, 960), (17, 25)]:
        ys, xs = source_positions(h, out_h, False, cpu), source_positions(w, out_w, False, cpu)
        for lg in (logits[0], batch):
            host = sampled_argmax(lg, ys, xs)
            assert torch.equal(host, sampled_argmax_device(lg, ys, xs)), (out_h, out_w, len(lg))
            assert torch.equal(host, old_sampled_argmax(lg, ys, xs))


@pytest.mark.parametrize("low_hw, out_hw, align, path", [
    ((23, 30), (360, 480), False, "cells"), ((23, 30), (361, 479), True, "cells"),  # LPS-Net's 1/16
    ((45, 60), (360, 480), False, "rows"), ((180, 240), (360, 480), False, "corners"),
    ((23, 30), (17, 25), False, "corners")])
def test_every_host_path_gives_the_plain_bilinear_labels(low_hw, out_hw, align, path) -> None:
    """The host interpolates boundary samples cell by cell for coarse logits (16x16 samples a
    cell), from interpolated rows for finer ones (8x8) and corner by corner for the finest (2x2) or
    fewer samples than cells: each gives the labels of a direct tap per sample, and of the torch path."""
    from lightseg_cli.infer import labels

    g = torch.Generator().manual_seed(1)
    lg = torch.nn.functional.interpolate(torch.randn(2, 11, 7, 9, generator=g), size=low_hw, mode="bilinear")
    ys, xs = (source_positions(n, m, align, torch.device("cpu")) for n, m in zip(low_hw, out_hw))
    ay = labels._axis(ys.numpy().tobytes(), low_hw[0])
    ax = labels._axis(xs.numpy().tobytes(), low_hw[1])
    if ay.runs.shape[1] * ax.runs.shape[1] >= labels.BLOCK_SAMPLES:
        taken = "cells"
    else:
        boundary = labels.mixed_cells(lg.argmax(1)[0].numpy())[ay.i0][:, ax.i0].sum()
        taken = "corners" if boundary < low_hw[0] * out_hw[1] else "rows"
    assert taken == path
    host = sampled_argmax(lg, ys, xs)
    assert torch.equal(host, sampled_argmax_device(lg, ys, xs))
    assert torch.equal(host, old_sampled_argmax(lg, ys, xs))
    assert (host != host[:, :1, :1]).any()  # class boundaries were in view
