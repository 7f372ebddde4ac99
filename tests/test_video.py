"""Video files, stdin and network streams through the pipeline; probe; stride; ordering."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from lightseg_cli.metrics import ConfusionMatrix

from .conftest import (
    SENDER,
    SHIPPED,
    count_frames,
    free_port,
    lightseg_cmd,
    make_video,
    need_shared,
    wait_for_receiver,
)


def test_dashcam_video_overlay_and_masks(cli, tmp_path: Path) -> None:
    video = need_shared("video", "solidWhiteRight.mp4")
    r = cli("run", video, "--model", "espnetv2-s0.5-cityscapes", "--size", "512x256", "--save-masks", "--out",
            tmp_path / "o", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert s["frames"] == 221 and s["dropped"] == 0 and s["fps"] > 0 and s["seconds"] > 0
    overlay = tmp_path / "o" / "solidWhiteRight_overlay.mp4"
    assert str(overlay) in s["outputs"]
    n, fps, w, h = count_frames(overlay)
    assert (n, fps, w, h) == (221, Fraction(25), 960, 540)
    with av.open(str(overlay)) as c:
        st = c.streams.video[0]
        assert st.codec_context.name == "h264" and st.pix_fmt == "yuv420p"
    masks = sorted((tmp_path / "o" / "masks").iterdir())
    assert len(masks) == 221 and masks[0].name == "solidWhiteRight_000000.png"
    m = cv2.imread(str(masks[100]), cv2.IMREAD_UNCHANGED)
    assert m.shape == (540, 960) and m.dtype == np.uint8 and m.max() < 20
    assert set(s["stages_ms"]) == {"decode", "preprocess", "infer", "postprocess", "write"}


def test_camvid_video_scores_close_to_the_image_eval(cli, tmp_path: Path) -> None:
    video = need_shared("video", "camvid_val_0016E5.mp4")
    camvid = need_shared("data", "camvid")
    r = cli("run", video, "--model", "espnet-camvid", "--save-masks", "--out", tmp_path / "v", "-q")
    assert r.code == 0, r.err
    pairs = [ln.split() for ln in (camvid / "val.txt").read_text().split("\n") if ln.strip()]
    cm = ConfusionMatrix(11, 12)
    for i, (_, lab) in enumerate(pairs):
        mask = cv2.imread(str(tmp_path / "v" / "masks" / f"camvid_val_0016E5_{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        cm.update(mask, cv2.imread(str(camvid / lab), cv2.IMREAD_UNCHANGED))
    video_miou = cm.miou() * 100
    assert abs(video_miou - 70.10) <= 1.5, video_miou


def test_probe_reports_exact_rational_fps(cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "ntsc.mp4", frames=12, fps=Fraction(30000, 1001))
    r = cli("probe", video, "--json")
    assert r.code == 0, r.err
    p = r.json()
    assert p["kind"] == "video" and p["fps"] == "30000/1001" and p["frames"] == 12
    assert (p["width"], p["height"], p["codec"]) == (160, 96, "h264")
    assert "pyav" in p["decoder"]
    r = cli("probe", tmp_path)
    assert r.code == 3 and "no images" in r.err


def test_stride_output_rate_and_frame_order(cli, tmp_path: Path) -> None:
    video = make_video(tmp_path / "c.mp4", frames=30, fps=Fraction(30))
    r = cli("run", video, *SHIPPED, "--stride", "3", "--save-masks", "--stats", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    assert r.json()["frames"] == 10
    n, fps, _, _ = count_frames(tmp_path / "o" / "c_overlay.mp4")
    assert n == 10 and fps == Fraction(10)
    assert [p.name for p in sorted((tmp_path / "o" / "masks").iterdir())][:2] == ["c_000000.png", "c_000003.png"]
    rows = (tmp_path / "o" / "c_stats.jsonl").read_text().splitlines()
    assert len(rows) == 10 and '"index": 27' in rows[-1]


def test_pipelined_sequential_and_workers_give_identical_masks(tmp_path: Path) -> None:
    from lightseg_cli.infer.segmenter import Segmenter
    from lightseg_cli.pipeline.job import RunOptions, prepare
    from lightseg_cli.pipeline.pipeline import PipelineCfg

    video = make_video(tmp_path / "c.mp4", frames=16)
    seg = Segmenter("lpsnet-s", size=(240, 176))
    outs = {}
    for name, mode, cfg in [("seq", "sequential", PipelineCfg()), ("pipe", "pipelined", PipelineCfg(batch=3)),
                            ("workers", "pipelined", PipelineCfg(workers=2, queue=2))]:
        s = prepare(str(video), seg, RunOptions(out=tmp_path / name, save_masks=True, mask_video=True,
                                                pipeline=cfg)).run(mode=mode, handle_signals=False)
        assert s.frames == 16 and s.error is None
        outs[name] = [cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in sorted((tmp_path / name / "masks").iterdir())]
    for name in ("pipe", "workers"):
        assert all((a == b).all() for a, b in zip(outs["seq"], outs[name], strict=True))
    with av.open(str(tmp_path / "seq" / "c_masks.mkv")) as c:  # lossless class-id video
        decoded = [f.to_ndarray(format="gray") for f in c.decode(video=0)]
    assert len(decoded) == 16 and all((a == b).all() for a, b in zip(decoded, outs["seq"], strict=True))


def _decoded(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.mark.parametrize("mode", ["blend", "mask", "side-by-side"])
def test_blend_mask_and_side_by_side_overlay_videos(cli, tmp_path: Path, mode: str) -> None:
    """--overlay blend (the default): the frame and the class colours half and half (drawn on the
    encoder's I420 planes); mask: the video shows the class colours of the masks; side-by-side: the
    frame on the left, the blend on the right, twice as wide."""
    from lightseg_cli.zoo import get_cfg

    video = make_video(tmp_path / "c.mp4", frames=8, size=(160, 96))
    r = cli("run", video, *SHIPPED, "--size", "240x176", "--overlay", mode, "--no-legend", "--crf", "4",
            "--save-masks", "--out", tmp_path / "o", "--json")
    assert r.code == 0, r.err
    n, _, w, h = count_frames(tmp_path / "o" / "c_overlay.mp4")
    assert (n, w, h) == (8, 320 if mode == "side-by-side" else 160, 96)
    palette = np.array(get_cfg("lpsnet-s").dataset.palette)
    src = _decoded(video)
    for i, drawn in enumerate(_decoded(tmp_path / "o" / "c_overlay.mp4")):
        labels = cv2.imread(str(tmp_path / "o" / "masks" / f"c_{i:06d}.png"), cv2.IMREAD_UNCHANGED)
        colours, frame, drawn = palette[labels], src[i].astype(int), drawn.astype(int)
        if mode == "mask":
            assert np.abs(drawn - colours).mean() < 10
            assert np.abs(frame - colours).mean() > 30  # so the frame itself would not pass
        elif mode == "blend":
            blend = (frame + colours) / 2  # --alpha 0.5
            assert np.abs(drawn - blend).mean() < 10 and np.abs(drawn - frame).mean() > 15
        else:
            left, right = drawn[:, :160], drawn[:, 160:]
            assert np.abs(left - frame).mean() < 8
            blend = (frame + colours) / 2  # --alpha 0.5
            assert np.abs(right - blend).mean() < 10 and np.abs(right - frame).mean() > 15


def test_video_on_stdin(tmp_path: Path) -> None:
    video = make_video(tmp_path / "c.ts", frames=20, fmt="mpegts")
    with open(video, "rb") as f:
        p = subprocess.run([*lightseg_cmd(), "run", "-", *SHIPPED, "--format", "mpegts", "--out", str(tmp_path / "o"),
                            "--json"], stdin=f, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert '"frames": 20' in p.stdout
    assert count_frames(tmp_path / "o" / "stdin_overlay.mp4")[0] == 20


@pytest.mark.parametrize("proto", ["tcp", "udp"])
def test_network_stream_from_a_sender_process(tmp_path: Path, proto: str) -> None:
    clip = make_video(tmp_path / "src.mp4", frames=75, size=(320, 192), fps=Fraction(25))
    port = free_port(socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    # TCP: lightseg listens and the sender connects; UDP: the sender just sends to the port.
    url = f"tcp://127.0.0.1:{port}?listen=1" if proto == "tcp" else f"udp://127.0.0.1:{port}"
    run = subprocess.Popen([*lightseg_cmd(), "run", url, *SHIPPED, "--timeout", "5", "--reconnect", "0", "--buffer",
                            "4", "--out", str(tmp_path / "o"), "--json"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    wait_for_receiver(run, port, proto)
    sender = subprocess.run([*SENDER, str(clip), f"{proto}://127.0.0.1:{port}"], capture_output=True, text=True,
                            timeout=120)
    assert sender.returncode == 0, sender.stderr
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    import json

    s = json.loads(out)
    assert s["source"]["kind"] == "stream" and s["source"]["live"] is True
    sent = int(sender.stdout.strip())
    assert sent == 75
    # Live: stale frames are dropped (and counted) rather than queued; nothing is invented.
    assert s["frames"] >= 5
    assert s["frames"] + s["dropped"] <= sent
    if proto == "tcp":  # lossless transport: every frame is either processed or counted as dropped
        assert s["frames"] + s["dropped"] == sent
    overlay = next((tmp_path / "o").glob("*_overlay.mp4"))
    assert count_frames(overlay)[0] == s["frames"]


def test_bench_reports_all_three_modes_in_json(cli, small_video: Path) -> None:
    r = cli("bench", small_video, "--model", "lpsnet-s", "--size", "128x64", "--frames", "20", "--repeat", "2",
            "--json")
    assert r.code == 0, r.err
    b = r.json()
    assert (b["model"], b["size"], b["frames"]) == ("lpsnet-s-camvid", [128, 64], 20)
    # The cpu profile runs LPS-Net on OpenVINO where the extra is installed (pipelines/cpu.toml).
    assert (b["backend"], b["device"]) == ("openvino" if importlib.util.find_spec("openvino") else "torch", "cpu")
    assert b["pipelined_fps"] > 0 and b["sequential_fps"] > 0 and b["model_fps"] > 0
    assert {"decode", "preprocess", "infer", "postprocess", "write"} <= set(b["stages_ms"])
    assert all(b["stages_ms"][k] > 0 for k in ("decode", "infer", "write"))
    modes = [run["mode"] for run in b["runs"]]
    assert modes.count("sequential") == modes.count("pipelined") == 2 and modes.count("model") == 4
    assert all(run["frames"] == 20 for run in b["runs"] if run["mode"] != "model")
    pipelined = [x for x in b["runs"] if x["mode"] == "pipelined"]
    pairs = [(p["fps"] / s["fps"]) for p, s in zip(pipelined, [x for x in b["runs"] if x["mode"] == "sequential"])]
    assert b["pipelined_vs_sequential"] == pytest.approx(sum(pairs) / 2, rel=0.01)
    # Each pipelined run is compared with the model alone timed right before and right after it.
    model = [x for x in b["runs"] if x["mode"] == "model"]
    assert [(m["pipelined_run"], m["when"]) for m in model] == [(1, "before"), (1, "after"),
                                                                (2, "before"), (2, "after")]
    ratios = [2 * p["fps"] / (m0["fps"] + m1["fps"]) for p, m0, m1 in zip(pipelined, model[::2], model[1::2])]
    assert b["pipelined_vs_model"] == pytest.approx(sum(ratios) / 2, rel=0.01)
    r = cli("bench", small_video, "--model", "lpsnet-s", "--size", "128x64", "--frames", "5", "--backend",
            "torch-plain", "--json")
    assert r.code == 0, r.err
    assert r.json()["backend"] == "torch-plain"


def test_video_frames_carry_the_planes_they_were_decoded_from(tmp_path: Path) -> None:
    """A yuv420p video's frames keep the decoder's I420 (the overlay video blends those instead of
    converting the RGB image back); they are the RGB image's, within the two conversions' rounding."""
    from lightseg_cli.draw.overlay import Overlay
    from lightseg_cli.sources import open_source
    from lightseg_cli.types import Frame
    from lightseg_cli.zoo import get_cfg

    src = open_source(str(make_video(tmp_path / "c.mp4", frames=4, size=(160, 96))))
    frames = [f for f in src if isinstance(f, Frame)]
    assert len(frames) == 4
    cfg = get_cfg("lpsnet-s")
    ov = Overlay(cfg.dataset.palette, cfg.dataset.classes)
    labels = (np.indices((96, 160)).sum(0) // 23 % 11).astype(np.uint8)  # every class, in diagonal bands
    for f in frames:
        assert f.i420 is not None and f.i420.shape == (144, 160)
        back = cv2.cvtColor(f.i420, cv2.COLOR_YUV2RGB_I420)
        assert np.abs(back.astype(int) - f.image).max() <= 3
        from_planes = ov.annotate_i420(f.image[None], labels[None], [f.i420])[0]
        from_rgb = ov.annotate_i420(f.image[None], labels[None])[0]
        diff = np.abs(from_planes.astype(int) - from_rgb)
        # Within the RGB round trip's rounding and clipping (this video has saturated colours), more
        # at sharp colour edges in chroma, where the decoder's planes hold the encoder's subsampled
        # chroma and the RGB image an interpolation of it.
        assert diff[:96].max() <= 4 and diff.mean() < 0.5
