"""Where logits become class ids: the arg-max of bilinearly resized logits, computed without the
resize, and the uint8 nearest-neighbour repeat that takes network-size labels to the frame.

A bilinear sample is a convex combination of four source pixels. Where those four share their
arg-max class c, c stays the arg-max of any convex combination (logit_c beats every other logit at
each corner, so it beats it in the weighted sum too): the low-resolution label is the answer. Only
samples in cells on class boundaries are interpolated for real, with the arithmetic of a direct
bilinear tap, so the labels are those of ``argmax(F.interpolate(logits, mode="bilinear"))``.

On the host (NumPy, whose gathers are several times faster than torch's ``index_select``) the
boundary samples are interpolated in one of two ways, by how many samples a source cell holds:

* coarse logits (LPS-Net's 1/16: 16x16 samples a cell): cell by cell. The samples of a cell are a
  rectangle, so its two source rows are interpolated along x once and the rectangle is blended
  from them with broadcasts, without gathering sample by sample (1.9 against 2.4 ms a 960x540
  frame of lpsnet-m at 480x360);
* finer logits: sample by sample, from source rows interpolated along x at every output column
  (ESPNet-C's 1/8, where blocks of 8x8 broadcast too little at a time to pay) or, when boundary
  samples are few (ESPNetv2's 1/2), each from its four corners.

On a GPU the same arithmetic runs in torch ops. ``benchmarks/postprocess.py`` times these steps.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

BLOCK_SAMPLES = 256  # samples a source cell holds from which the host interpolates cell by cell (16x16)


def taps(src: torch.Tensor, n_in: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear taps (index below, index above, weight of the one above) at source positions."""
    src = src.clamp(min=0)
    i0 = src.floor().long().clamp(max=n_in - 1)
    return i0, (i0 + 1).clamp(max=n_in - 1), src - i0


def source_positions(n_in: int, n_out: int, align_corners: bool, device: torch.device) -> torch.Tensor:
    """Where ``F.interpolate(mode="bilinear")`` samples the input for each output index."""
    out = torch.arange(n_out, device=device, dtype=torch.float32)
    if align_corners:
        return out * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    return (out + 0.5) * (n_in / n_out) - 0.5


def nearest_exact(n_in: int, n_out: int, device: torch.device) -> torch.Tensor:
    """Source indices of ``F.interpolate(mode="nearest-exact")``."""
    return ((torch.arange(n_out, device=device, dtype=torch.float64) + 0.5) * (n_in / n_out)).floor().long().clamp(
        max=n_in - 1)


def mixed_cells(low: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Cells (i, j)-(i+1, j+1) of ``(..., h, w)`` labels (a NumPy array or a tensor) whose four
    corners disagree; edges clamp, so the last row and column compare only along the edge."""
    mixed = low != low  # all False, of low's kind
    mixed[..., :, :-1] |= low[..., :, 1:] != low[..., :, :-1]
    mixed[..., :-1, :] |= low[..., 1:, :] != low[..., :-1, :]
    mixed[..., :-1, :-1] |= low[..., 1:, 1:] != low[..., :-1, :-1]
    return mixed


def sampled_argmax(logits: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """``argmax`` of the logits bilinearly sampled at rows ``ys`` x columns ``xs`` (float source
    positions), as uint8 ``(N, len(ys), len(xs))``, computed cheaply and exactly (module docstring)."""
    if logits.device.type == "cpu":
        return torch.from_numpy(_sampled_argmax_host(logits.numpy(), ys.numpy(), xs.numpy()))
    return sampled_argmax_device(logits, ys, xs)


def sampled_argmax_device(logits: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """:func:`sampled_argmax` in torch ops, for logits on a GPU: the source rows are interpolated
    along x at every output column, then each boundary sample blends two of those rows."""
    n, c, h, w = logits.shape
    low = logits.argmax(1).to(torch.uint8)
    mixed = mixed_cells(low)
    y0, y1, ly = taps(ys, h)
    x0, x1, lx = taps(xs, w)
    out = low.index_select(1, y0).index_select(2, x0)
    flat = mixed.index_select(1, y0).index_select(2, x0).reshape(-1).nonzero().squeeze(1)
    if flat.numel():
        ow = xs.numel()
        wx = lx.to(logits.dtype)
        # rows[(b, i, x)] = logits of source row i of image b, interpolated along x at output column x
        rows = logits.index_select(3, x0) * (1 - wx) + logits.index_select(3, x1) * wx
        rows = rows.permute(0, 2, 3, 1).reshape(-1, c)
        b, rest = flat // (ys.numel() * ow), flat % (ys.numel() * ow)
        by, bx = rest // ow, rest % ow
        base = b * (h * ow) + bx
        top = rows.index_select(0, base + y0.index_select(0, by) * ow)
        bottom = rows.index_select(0, base + y1.index_select(0, by) * ow)
        wy = ly.to(logits.dtype).index_select(0, by)[:, None]
        out.view(-1)[flat] = (top * (1 - wy) + bottom * wy).argmax(1).to(torch.uint8)
    return out


def _argmax0(v: np.ndarray) -> np.ndarray:
    """``v.argmax(0)`` as uint8 for a few rows of many values, one pass per row (NumPy's arg-max
    along a non-last axis copies the array first); the first maximum wins, as in ``argmax``."""
    best = v[0].copy()
    idx = np.zeros(v.shape[1:], np.uint8)
    for ch in range(1, len(v)):
        more = v[ch] > best
        idx[more] = ch
        np.maximum(best, v[ch], out=best)
    return idx


@dataclass(frozen=True)
class _Axis:
    """One axis of a host sample grid: each sample's bilinear taps, and the samples grouped into
    runs by their lower tap (a source cell's samples along this axis)."""

    i0: np.ndarray  # lower tap of each sample
    i1: np.ndarray  # upper tap
    w: np.ndarray  # float32 weight of the upper tap
    src: np.ndarray  # (k,) lower tap of each run
    runs: np.ndarray  # (k, length) sample indices of each run, a long run split, a short one padded with its last


@functools.lru_cache(maxsize=64)
def _axis(positions: bytes, n_in: int) -> _Axis:
    """The :class:`_Axis` of float32 source ``positions`` (as bytes, to be a cache key) over
    ``n_in`` source pixels. Runs are as long as the median cell's, so the edge cells, which also
    hold the clamped samples, do not widen every block."""
    pos = torch.from_numpy(np.frombuffer(positions, np.float32).copy())
    i0, i1, w = (t.numpy() for t in taps(pos, n_in))
    order = np.argsort(i0, kind="stable")
    counts = np.bincount(i0, minlength=n_in)
    length = max(1, int(np.median(counts[counts > 0])))
    src, runs, start = [], [], 0
    for cell, count in enumerate(counts.tolist()):
        for s in range(start, start + count, length):
            end = min(s + length, start + count)
            src.append(cell)
            runs.append(order[np.minimum(np.arange(s, s + length), end - 1)])
        start += count
    return _Axis(i0, i1, w.astype(np.float32), np.array(src, np.intp), np.array(runs, np.intp).reshape(-1, length))


def _sampled_argmax_host(logits: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """:func:`sampled_argmax` in NumPy, one image at a time, the same float32 arithmetic."""
    n, c, h, w = logits.shape
    ay = _axis(np.ascontiguousarray(ys, np.float32).tobytes(), h)
    ax = _axis(np.ascontiguousarray(xs, np.float32).tobytes(), w)
    by_cell = ay.runs.shape[1] * ax.runs.shape[1] >= BLOCK_SAMPLES
    out = np.empty((n, ys.size, xs.size), np.uint8)
    for k in range(n):
        low = _argmax0(logits[k])
        out[k] = low[ay.i0][:, ax.i0]
        (_cells if by_cell else _samples)(logits[k], mixed_cells(low), ay, ax, out[k])
    return out


def _cells(chw: np.ndarray, mixed: np.ndarray, ay: _Axis, ax: _Axis, out: np.ndarray) -> None:
    """In place: the samples of every mixed source cell, run by run (see the module docstring)."""
    a, b = np.nonzero(mixed[ay.src][:, ax.src])  # the (row run, column run) blocks to interpolate
    if not a.size:
        return
    one = np.float32(1)
    rows, cols = ay.runs[a], ax.runs[b]  # (m, ly) and (m, lx) output indices
    c0, c1, wx = ax.i0[cols], ax.i1[cols], ax.w[cols]
    top, bottom = ay.src[a][:, None], ay.i1[rows[:, :1]]  # the cell's source rows
    # Its two source rows interpolated along x at the block's columns: (c, m, lx) each.
    upper = chw[:, top, c0] * (one - wx) + chw[:, top, c1] * wx
    lower = chw[:, bottom, c0] * (one - wx) + chw[:, bottom, c1] * wx
    wy = ay.w[rows][None, :, :, None]
    v = upper[:, :, None, :] * (one - wy) + lower[:, :, None, :] * wy  # (c, m, ly, lx)
    out[rows[:, :, None], cols[:, None, :]] = _argmax0(v.reshape(len(chw), -1)).reshape(v.shape[1:])


def _samples(chw: np.ndarray, mixed: np.ndarray, ay: _Axis, ax: _Axis, out: np.ndarray) -> None:
    """In place: every sample in a mixed cell, sample by sample. When they are many (ESPNet-C's
    1/8), from source rows interpolated along x at every output column; when few (ESPNetv2's
    1/2, where a few percent of the samples are on boundaries), each from its four corners."""
    flat = np.flatnonzero(mixed[ay.i0][:, ax.i0])
    if not flat.size:
        return
    c, h, w = chw.shape
    ow = out.shape[1]
    one = np.float32(1)
    by, bx = np.divmod(flat, ow)
    if flat.size < h * ow:  # fewer samples than interpolated rows would hold: corners per sample
        hwc = np.ascontiguousarray(chw.transpose(1, 2, 0)).reshape(-1, c)
        r0, r1, c0, c1 = ay.i0[by] * w, ay.i1[by] * w, ax.i0[bx], ax.i1[bx]
        wx, wy = ax.w[bx][:, None], ay.w[by][:, None]
        top = hwc[r0 + c0] * (one - wx) + hwc[r0 + c1] * wx
        bottom = hwc[r1 + c0] * (one - wx) + hwc[r1 + c1] * wx
        out.reshape(-1)[flat] = (top * (one - wy) + bottom * wy).argmax(1)
    else:
        # rows[:, i * ow + x] = the logits of source row i interpolated along x at output column x
        rows = (chw[:, :, ax.i0] * (one - ax.w) + chw[:, :, ax.i1] * ax.w).reshape(c, -1)
        wy = ay.w[by]
        v = rows.take(ay.i0[by] * ow + bx, 1) * (one - wy) + rows.take(ay.i1[by] * ow + bx, 1) * wy
        out.reshape(-1)[flat] = _argmax0(v)


def resized_argmax(logits: torch.Tensor, out_hw: tuple[int, int]) -> torch.Tensor:
    """``argmax(F.interpolate(logits, out_hw, mode="bilinear"))`` as uint8, without the resize."""
    (h, w), dev = logits.shape[2:], logits.device
    return sampled_argmax(logits, source_positions(h, out_hw[0], False, dev),
                          source_positions(w, out_hw[1], False, dev))


def repeat_labels(labels: torch.Tensor, rows: torch.Tensor | np.ndarray | None,
                  cols: torch.Tensor | np.ndarray | None) -> torch.Tensor:
    """``labels[:, rows][:, :, cols]`` for uint8 ``(N, H, W)`` labels (None: keep that axis): a
    nearest-neighbour resize by index. NumPy index arrays gather on the host (for CPU tensors)."""
    if rows is None and cols is None:
        return labels
    if isinstance(rows, np.ndarray) or isinstance(cols, np.ndarray):
        a = labels.numpy()
        if rows is not None:
            a = a[:, rows]
        if cols is not None:
            a = a[:, :, cols]
        return torch.from_numpy(a)
    if rows is not None:
        labels = labels.index_select(1, rows)
    return labels if cols is None else labels.index_select(2, cols)
