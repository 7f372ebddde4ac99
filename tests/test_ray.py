"""``lightseg run --engine ray``: the same outputs as a local run, a worker process killed mid-run,
resuming an interrupted run, and the errors (missing extra, sources Ray does not take).

The tests share one local Ray instance (2 CPUs, a small object store, no dashboard); they are
marked ``ray`` and run in CI, which installs the extra. Runs use LPS-Net S at a small size (its
weights ship with the package), so only the byte-identity test needs ../shared.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest

from lightseg_cli.errors import EXIT_SIGINT
from lightseg_cli.pipeline.job import RunOptions, exit_code

from .conftest import SHARED, SHIPPED, count_frames, lightseg_cmd, make_image, make_video, need_shared

SMALL = [*SHIPPED, "--size", "160x128", "--backend", "torch"]  # torch: no backend to export on each worker
RAY_RUN = ["--engine", "ray", "--workers", "2"]


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """One Ray instance for the module; its workers get a cache of their own and ../shared's weights."""
    ray = pytest.importorskip("ray")
    import logging

    env = {"XDG_CACHE_HOME": str(tmp_path_factory.mktemp("ray-cache")), "LIGHTSEG_PLAIN": "1"}
    if (SHARED / "weights").is_dir():
        env["LIGHTSEG_WEIGHTS"] = str(SHARED / "weights")
    ray.init(num_cpus=2, object_store_memory=128 << 20, include_dashboard=False, logging_level=logging.ERROR,
             log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


def _images(folder: Path, n: int, size: tuple[int, int] = (160, 120)) -> Path:
    for i in range(n):
        make_image(folder / f"frame_{i:03d}.png", size=size, seed=i)
    return folder


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _partials(folder: Path) -> list[Path]:
    return list(folder.rglob(".*.part*"))


def test_missing_extra_is_one_line(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without Ray installed (hidden here), --engine ray exits 2 saying how to install it."""
    import lightseg_cli.distributed as distributed

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.delitem(sys.modules, "lightseg_cli.distributed.ray_engine", raising=False)
    monkeypatch.delattr(distributed, "ray_engine", raising=False)
    r = cli("run", _images(tmp_path / "imgs", 1), *SMALL, "--engine", "ray")
    assert r.code == 2, r.err
    lines = r.err.strip().splitlines()
    assert len(lines) == 1 and "pip install 'lightseg[ray]'" in lines[0], r.err


@pytest.mark.ray
def test_sources_and_options_ray_does_not_take(cli, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    imgs = _images(tmp_path / "imgs", 1)
    for args in (["0", "--engine", "ray"], [imgs, "--engine", "ray", "--show"], [imgs, "--out", "s3://bucket/run"],
                 [imgs, "--engine", "fast"]):
        r = cli("run", *args, *SMALL)
        assert r.code == 2 and "Traceback" not in r.err, (args, r.err)
    r = cli("run", tmp_path / "nothing-here", *SMALL, "--engine", "ray")
    assert r.code == 3 and len(r.err.strip().splitlines()) == 1, r.err


@pytest.mark.ray
def test_ray_outputs_identical_to_local_runs(cli, ray_local, tmp_path: Path) -> None:
    """CamVid val images, one broken file and a video: --engine ray writing to a file:// URI gives
    the files a local run of the folder gives (the images') plus those a local run of the video
    gives, byte for byte, and the same summary."""
    camvid = need_shared("data", "camvid")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for line in (camvid / "val.txt").read_text().splitlines()[:10]:
        shutil.copy(camvid / line.split()[0], imgs)
    (imgs / "broken.png").write_bytes(b"not a png")
    make_video(imgs / "clip.mp4", frames=6)
    args = [*SMALL, "--stats", "--save-masks", "--json"]
    local = cli("run", imgs, *args, "--out", tmp_path / "local")
    video = cli("run", imgs / "clip.mp4", *args, "--out", tmp_path / "local", "--exist-ok")
    ray = cli("run", imgs, *args, *RAY_RUN, "--out", (tmp_path / "ray").as_uri())
    assert local.code == video.code == ray.code == 0, (local.err, video.err, ray.err)
    assert _files(tmp_path / "ray") == _files(tmp_path / "local")  # the overlay video too: same x264 settings
    mp4 = "clip_overlay.mp4"
    assert count_frames(tmp_path / "ray" / mp4)[0] == 6
    lj, vj, rj = local.json(), video.json(), ray.json()
    assert rj["frames"] == lj["frames"] + vj["frames"] == 16
    assert (rj["model"], rj["size"]) == (lj["model"], lj["size"])
    assert rj["failures"] == lj["failures"] and [f["item"] for f in rj["failures"]] == [str(imgs / "broken.png")]
    assert rj["layout"]["engine"] == "ray" and rj["layout"]["workers"] == 2
    assert {o.rsplit("/", 1)[1] for o in rj["outputs"]} == {"imgs_stats.jsonl", "masks", "overlays", mp4,
                                                            "clip_stats.jsonl"}


@pytest.mark.ray
def test_killed_worker_loses_and_duplicates_nothing(ray_local, tmp_path: Path) -> None:
    """SIGKILL a worker process while it labels a batch: Ray restarts it and retries the batch,
    the run ends with exactly one mask per image and no temporary file."""
    from lightseg_cli.distributed import ray_engine
    from lightseg_cli.distributed.work import WorkSpec
    from lightseg_cli.infer.build import build_segmenter

    imgs = _images(tmp_path / "imgs", 32, size=(320, 240))
    killed: list[int] = []
    stop = threading.Event()

    def kill_a_busy_worker() -> None:
        while not stop.is_set() and not killed:
            for proc in Path("/proc").glob("[0-9]*"):
                try:
                    title = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                if title.startswith(b"ray::MapWorker(MapBatches(_Images)).submit"):
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                    return
            time.sleep(0.01)

    spec = WorkSpec("lpsnet-s", partial(build_segmenter, "lpsnet-s", size=(160, 128), backend="torch"),
                    RunOptions(out=tmp_path / "out"))
    killer = threading.Thread(target=kill_a_busy_worker, daemon=True)
    killer.start()
    try:
        summary = ray_engine.prepare(str(imgs), spec, ray_engine.Cluster(workers=2, files_per_batch=2)).run()
    finally:
        stop.set()
        killer.join()
    assert killed, "no worker was seen labelling"
    assert not Path(f"/proc/{killed[0]}").exists()
    assert summary.error is None and exit_code(summary) == 0
    assert summary.frames == 32 and not summary.skipped
    masks = sorted(p.name for p in (tmp_path / "out" / "masks").iterdir())
    assert masks == [f"frame_{i:03d}.png" for i in range(32)]
    assert len(list((tmp_path / "out" / "overlays").iterdir())) == 32
    assert not _partials(tmp_path / "out")


@pytest.mark.ray
def test_interrupted_ray_run_resumes_with_skip_existing(cli, ray_local, tmp_path: Path) -> None:
    """A ray run stopped by SIGINT (a second driver joining this Ray instance by --address) exits
    130 with complete outputs; --skip-existing then labels only what is left."""
    imgs = _images(tmp_path / "imgs", 64, size=(320, 240))
    out = tmp_path / "out"
    address = ray_local.get_runtime_context().gcs_address
    proc = subprocess.Popen(lightseg_cmd() + ["run", str(imgs), *SMALL, *RAY_RUN, "--address", address,
                                              "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline and len(list(out.glob("masks/*.png"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_SIGINT, err
    first = len(list(out.glob("masks/*.png")))
    assert 0 < first < 64, first

    r = cli("run", imgs, *SMALL, *RAY_RUN, "--out", out, "--skip-existing", "--json")
    assert r.code == 0, r.err
    s = r.json()
    assert 0 < s["source"]["frames"] < 64 and s["frames"] == s["source"]["frames"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == [f"frame_{i:03d}.png" for i in range(64)]
    assert not _partials(out)


@pytest.mark.ray
def test_a_worker_that_cannot_start_is_one_line(cli, ray_local, tmp_path: Path) -> None:
    """The segmenter is built on the workers: an unknown model fails there and is reported as a
    local run reports it (one line, exit 2)."""
    r = cli("run", _images(tmp_path / "imgs", 2), "--model", "no-such-model", *RAY_RUN, "--out", tmp_path / "out")
    assert r.code == 2, r.err
    errors = [line for line in r.err.splitlines() if not line.startswith("files ")]  # progress lines aside
    assert len(errors) == 1 and errors[0].startswith("error: ") and "no-such-model" in errors[0], r.err
