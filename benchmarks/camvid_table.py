"""Every CamVid model side by side: parameters, GMACs, CPU model-only FPS at two sizes, val mIoU
and held-out-sequence mIoU; writes the README's table (markdown) and an FPS-vs-mIoU plot (PNG).

Speed is ``lightseg bench``'s model-only figure (network + nothing else, batch 1, the ``cpu``
profile's backend and allocator), measured in this one process with the models interleaved over
``--rounds`` rounds; the median per model and size is reported. mIoU is ``lightseg eval`` at each
model's native input size on CamVid ``val.txt`` and on the held-out sequence 0006R0 (the
leave-one-sequence-out list, see weights/README.md); scores are cached in the JSON so that a
re-plot (``--replot``) costs nothing.

    lightseg data split ../shared/data/camvid/train.txt --holdout 0006R0 --out runs/loso-0006R0
    python benchmarks/camvid_table.py --rounds 3 --json benchmarks/results/camvid_table.json \
        --png benchmarks/camvid_speed_accuracy.png
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

from lightseg_cli.bench import model_fps
from lightseg_cli.evaluate import evaluate
from lightseg_cli.infer.build import build_segmenter
from lightseg_cli.zoo import get_cfg
from lightseg_cli.zoo.complexity import measure
from lightseg_cli.zoo.weights import status_of

SHARED = Path(os.environ.get("LIGHTSEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MODELS = ("espnet-camvid", "espnetv2-s2.0-camvid", "espnetv2-s1.0-camvid", "lpsnet-s-camvid", "lpsnet-m-camvid",
          "lpsnet-l-camvid", "efficientnet-lite0-camvid", "efficientnet-lite2-camvid", "ghostnet-camvid",
          "fbnet-c-camvid")


# Weights trained on all of train.txt, sequence 0006R0 included (their cards in weights/README.md): their
# 0006R0 score is not a held-out figure and is shown as such.
SEEN_HOLDOUT = frozenset({"espnet-camvid", "lpsnet-s-camvid", "lpsnet-m-camvid", "lpsnet-l-camvid"})
# Weights trained on train.txt + val.txt once their recipe was fixed on the leave-one-sequence-out run:
# val and 0006R0 both trained them, so the held-out column (and the plot) shows that run's 0006R0 score,
# the same recipe without 0006R0 (their cards give both).
RECIPE_HOLDOUT = {"espnetv2-s2.0-camvid": 58.43, "espnetv2-s1.0-camvid": 55.65, "efficientnet-lite0-camvid": 47.84,
                  "efficientnet-lite2-camvid": 48.51, "ghostnet-camvid": 40.89, "fbnet-c-camvid": 38.84}


def _size(s: str) -> tuple[int, int]:
    w, h = s.lower().split("x")
    return int(w), int(h)


def scores(name: str, lists: dict[str, Path]) -> dict[str, float]:
    seg = build_segmenter(name, profile="cpu")[0]
    return {key: round(evaluate(seg, path).miou * 100, 2) for key, path in lists.items()}


def speeds(names: list[str], sizes: list[tuple[int, int]], rounds: int, iters: int) -> dict[str, dict[str, float]]:
    segs = {(n, s): build_segmenter(n, profile="cpu", size=s)[0] for n in names for s in sizes}
    rates: dict[tuple[str, tuple[int, int]], list[float]] = {k: [] for k in segs}
    for r in range(rounds):
        for (n, s), seg in segs.items():
            rates[n, s].append(model_fps(seg, (s[1], s[0]), iterations=iters))
            print(f"round {r + 1}/{rounds} {n} @{s[0]}x{s[1]}: {rates[n, s][-1]:.1f} FPS", file=sys.stderr)
    return {n: {f"{s[0]}x{s[1]}": round(statistics.median(rates[n, s]), 2) for s in sizes} for n in names}


def markdown(rows: list[dict]) -> str:
    sizes = list(rows[0]["fps"])
    head = ["model", "params (M)", "GMACs (native)", *(f"FPS @{s}" for s in sizes), "val mIoU",
            "held-out 0006R0 mIoU"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"`{r['model']}`", f"{r['params_m']:.2f}", f"{r['gmacs']:.2f} @{r['native']}"]
        m = r["model"]
        held = (f"{RECIPE_HOLDOUT[m]:.1f} (its recipe without 0006R0)" if m in RECIPE_HOLDOUT
                else f"{r['holdout']:.1f}" + (" (trained on it)" if m in SEEN_HOLDOUT else ""))
        val = f"{r['val']:.1f}" + (" (trained on it)" if m in RECIPE_HOLDOUT else "")
        cells += [f"{r['fps'][s]:.1f}" for s in sizes] + [val, held]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _at_native(row: dict) -> str:
    """The measured size closest in pixels to the model's native size (where its mIoU is scored)."""
    area = lambda s: np.prod(_size(s))  # noqa: E731
    return min(row["fps"], key=lambda s: abs(np.log(area(s) / area(row["native"]))))


def plot(rows: list[dict], path: Path) -> None:
    """Held-out mIoU against model-only FPS at the size the mIoU was scored at (the measured size
    nearest each model's native one), log-scaled FPS axis, drawn with OpenCV."""
    W, H, left, bottom, top, right = 960, 600, 80, 70, 50, 40
    img = np.full((H, W, 3), 255, np.uint8)
    fps = [r["fps"][_at_native(r)] for r in rows]
    miou = [RECIPE_HOLDOUT.get(r["model"], r["holdout"]) for r in rows]
    x0, x1 = np.log10(min(fps) / 1.3), np.log10(max(fps) * 2.2)  # room for the labels
    y0, y1 = 5 * np.floor(min(miou) / 5 - 0.5), 5 * np.ceil(max(miou) / 5 + 0.5)
    px = lambda v: int(left + (np.log10(v) - x0) / (x1 - x0) * (W - left - right))  # noqa: E731
    py = lambda v: int(H - bottom - (v - y0) / (y1 - y0) * (H - bottom - top))  # noqa: E731
    font, grey = cv2.FONT_HERSHEY_SIMPLEX, (200, 200, 200)
    for v in np.arange(y0, y1 + 0.1, 5):
        cv2.line(img, (left, py(v)), (W - right, py(v)), grey, 1)
        cv2.putText(img, f"{v:.0f}", (left - 40, py(v) + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for v in (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500):
        if x0 <= np.log10(v) <= x1:
            cv2.line(img, (px(v), top), (px(v), H - bottom), grey, 1)
            cv2.putText(img, str(v), (px(v) - 10, H - bottom + 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (W - right, H - bottom), (0, 0, 0), 1)
    cv2.putText(img, "CPU model-only FPS at the native size (2-core VM, log scale)", (left + 170, H - 20), font, 0.6,
                (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, "mIoU on held-out CamVid sequence 0006R0", (left, top - 20), font, 0.6, (0, 0, 0), 1,
                cv2.LINE_AA)
    points = [(px(f), py(m)) for f, m in zip(fps, miou)]
    placed: list[tuple[int, int, int, int]] = []  # label boxes drawn so far (x0, y0, x1, y1)
    for r, (x, y) in zip(rows, points):
        colour = (40, 40, 200) if r["ours"] else (200, 90, 30)
        seen = r["model"] in SEEN_HOLDOUT
        cv2.circle(img, (x, y), 6, colour, 2 if seen else -1, cv2.LINE_AA)
        label = f"{r['model'].removesuffix('-camvid')} @{_at_native(r)}" + (
            " *" if seen else " +" if r["model"] in RECIPE_HOLDOUT else "")
        sx, sy = _label_spot(label, (x, y), placed, points, font)
        cv2.putText(img, label, (sx, sy), font, 0.5, colour, 1, cv2.LINE_AA)
    for i, note in enumerate(("red: trained by lightseg   blue: authors' weights",
                              "hollow, *: 0006R0 was in its training set (not held out)",
                              "+: trained on train+val; its recipe's run without 0006R0")):
        cv2.putText(img, note, (W - 480, top + 120 + 20 * i), font, 0.5, (80, 80, 80), 1, cv2.LINE_AA)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def _label_spot(label: str, at: tuple[int, int], placed: list[tuple[int, int, int, int]],
                points: list[tuple[int, int]], font: int) -> tuple[int, int]:
    """Where to write a point's label: above right, below right, above left or below left of it, the
    first spot that overlaps neither a label drawn before nor another point (models of similar speed
    and accuracy crowd); the label's box is added to ``placed``."""
    (tw, th), _ = cv2.getTextSize(label, font, 0.5, 1)
    x, y = at

    def box(sx: int, sy: int) -> tuple[int, int, int, int]:
        return sx, sy - th, sx + tw, sy + 3

    def free(b: tuple[int, int, int, int]) -> bool:
        hits_label = any(b[0] < q[2] and q[0] < b[2] and b[1] < q[3] and q[1] < b[3] for q in placed)
        hits_point = any(b[0] - 6 < px < b[2] + 6 and b[1] - 6 < py < b[3] + 6 for px, py in points)
        return not (hits_label or hits_point)

    spots = [(x + 9, y - 6), (x + 9, y + th + 6), (x - 9 - tw, y - 6), (x - 9 - tw, y + th + 6)]
    sx, sy = next((s for s in spots if free(box(*s))), spots[0])
    placed.append(box(sx, sy))
    return sx, sy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated; those without weights are skipped")
    ap.add_argument("--sizes", default="480x360,960x720")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--val", type=Path, default=SHARED / "data/camvid/val.txt")
    ap.add_argument("--holdout", type=Path, default=Path("runs/loso-0006R0/holdout.txt"))
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/camvid_table.json"))
    ap.add_argument("--png", type=Path, default=Path("benchmarks/camvid_speed_accuracy.png"))
    ap.add_argument("--replot", action="store_true", help="only redraw the table and plot from --json")
    a = ap.parse_args()
    if a.replot:
        rows = json.loads(a.json.read_text())["rows"]
    else:
        names = []
        for n in a.models.split(","):
            st = status_of(get_cfg(n))
            if st is None or st.found is None:
                print(f"skipping {n}: no weights", file=sys.stderr)
            else:
                names.append(n)
        cached = {r["model"]: r for r in json.loads(a.json.read_text())["rows"]} if a.json.is_file() else {}
        sizes = [_size(s) for s in a.sizes.split(",")]
        fps = speeds(names, sizes, a.rounds, a.iters)
        rows = []
        for n in names:
            cfg = get_cfg(n)
            old = cached.get(n, {})
            miou = ({"val": old["val"], "holdout": old["holdout"]} if "holdout" in old
                    else scores(n, {"val": a.val, "holdout": a.holdout}))
            params, gmacs = measure(cfg)
            rows.append({"model": n, "params_m": params / 1e6, "gmacs": gmacs,
                         "native": f"{cfg.input_size[0]}x{cfg.input_size[1]}", "fps": fps[n],
                         "ours": status_of(cfg).file.url is None,  # shipped with the package, not the authors'
                         **miou})
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"rows": rows}, indent=1))
    print(markdown(rows))
    plot(rows, a.png)
    print(f"plot: {a.png}", file=sys.stderr)


if __name__ == "__main__":
    main()
