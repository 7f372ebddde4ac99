"""Where weight files live, how they are verified, downloaded and imported.

Lookup order for a file ``<family>/<name>.pth``:

1. ``$LIGHTSEG_WEIGHTS`` (a folder laid out like ``espnet/...``, ``espnetv2/...``),
2. the user cache, ``$XDG_CACHE_HOME/lightseg/weights`` (default ``~/.cache/lightseg/weights``),
3. the package's own ``weights/`` (the weights this project trains and ships).

Every file is checked against the sha256 in ``weights/manifest.json`` before it is loaded.
Downloads and imports write to the user cache through a temporary file and an atomic rename.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..errors import WeightsError
from ..io import atomic
from ..io.cache import cache_dir as user_cache
from .pretrained import ModelCfg

ProgressFn = Callable[[int, int | None], None]


@dataclass(frozen=True)
class WeightFile:
    """A manifest row: a weight file's relative path, checksum and provenance."""

    path: str
    sha256: str
    url: str | None
    license: str
    source: str


@dataclass(frozen=True)
class WeightStatus:
    file: WeightFile
    found: Path | None
    verified: bool | None  # None when not found


def package_weights_dir() -> Path:
    return Path(str(resources.files("lightseg_cli.weights")))


def cache_dir() -> Path:
    return user_cache("weights")


def roots() -> list[tuple[str, Path]]:
    """The search roots in lookup order, each with a label for messages."""
    out = []
    env = os.environ.get("LIGHTSEG_WEIGHTS")
    if env:
        out.append(("$LIGHTSEG_WEIGHTS", Path(env).expanduser()))
    out.append(("cache", cache_dir()))
    out.append(("package", package_weights_dir()))
    return out


@cache
def manifest() -> dict[str, WeightFile]:
    """All known weight files, keyed by relative path."""
    raw = json.loads((package_weights_dir() / "manifest.json").read_text())
    return {p: WeightFile(path=p, **row) for p, row in raw["files"].items()}


def manifest_entry(relpath: str) -> WeightFile:
    try:
        return manifest()[relpath]
    except KeyError:
        raise WeightsError(f"weights file {relpath} is not in weights/manifest.json") from None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _candidates(relpath: str) -> Iterator[tuple[str, Path]]:
    for label, root in roots():
        p = root / relpath
        if p.is_file():
            yield label, p


def status(wf: WeightFile) -> WeightStatus:
    """The first copy of ``wf`` in lookup order and whether its checksum matches."""
    for _, p in _candidates(wf.path):
        return WeightStatus(wf, p, sha256_of(p) == wf.sha256)
    return WeightStatus(wf, None, None)


def status_of(cfg: ModelCfg) -> WeightStatus | None:
    """Status of a model's weight file; None when the manifest does not know the file."""
    if Path(cfg.weights).is_absolute():
        p = Path(cfg.weights)
        return WeightStatus(WeightFile(str(p), "", None, "", "local checkpoint"), p if p.is_file() else None,
                            True if p.is_file() else None)
    wf = manifest().get(cfg.weights)
    return status(wf) if wf else None


def _how_to_get(cfg_name: str, wf: WeightFile) -> str:
    ways = [f"`lightseg weights import DIR` (a folder holding {wf.path})"]
    if wf.url:
        ways.insert(0, f"`lightseg weights pull {cfg_name}`")
    else:
        ways.insert(0, "reinstall lightseg (the file ships with the package)")
    return " or ".join(ways)


def resolve(cfg: ModelCfg) -> Path:
    """Path of a verified copy of the model's weights, or a :class:`WeightsError` that says why.

    An absolute ``cfg.weights`` is a user's own checkpoint (from ``lightseg train``): used as is.
    """
    if Path(cfg.weights).is_absolute():
        if not Path(cfg.weights).is_file():
            raise WeightsError(f"model {cfg.name}: checkpoint {cfg.weights} not found")
        return Path(cfg.weights)
    wf = manifest().get(cfg.weights)
    if wf is None:
        # A zoo entry whose weights this release does not ship (e.g. an LPS-Net size not trained yet).
        raise WeightsError(
            f"model {cfg.name}: this release has no weights for it ({cfg.weights} is not in "
            f"weights/manifest.json); train them with `lightseg train --model {cfg.name} --data LIST --out RUN_DIR` "
            "and run with `--model RUN_DIR/best.pth`"
        )
    bad: list[str] = []
    for label, p in _candidates(wf.path):
        if sha256_of(p) == wf.sha256:
            return p
        size = p.stat().st_size
        bad.append(f"{p} ({label}, {size} bytes) fails its sha256 check (truncated or corrupt)")
    if bad:
        raise WeightsError(f"model {cfg.name}: {'; '.join(bad)}; get a good copy with {_how_to_get(cfg.name, wf)}")
    where = ", ".join(str(root) for _, root in roots())
    raise WeightsError(
        f"model {cfg.name}: weights file {wf.path} not found (looked in {where}); "
        f"get it with {_how_to_get(cfg.name, wf)}"
    )


def load_state_dict(cfg: ModelCfg) -> dict[str, torch.Tensor]:
    """The model's verified state dict on the CPU, with half-precision tensors made float32."""
    path = resolve(cfg)
    try:
        sd: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a file that hashes right but will not unpickle is a packaging bug
        raise WeightsError(f"model {cfg.name}: cannot read {path}: {e}") from e
    for key in ("state_dict", "model"):  # best.pth / shipped files, and last.pth (full checkpoint)
        if isinstance(sd, dict) and isinstance(sd.get(key), dict):
            sd = sd[key]
            break
    return {k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()}


def _atomic_copy_into_cache(relpath: str, write: Callable[[Path], None], sha256: str) -> Path:
    dest = cache_dir() / relpath
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing(dest, unique=True) as tmp:
        write(tmp)
        got = sha256_of(tmp)
        if got != sha256:
            raise WeightsError(f"{relpath}: sha256 {got[:12]}... does not match the manifest ({sha256[:12]}...)")
    return dest


def pull(wf: WeightFile, progress: ProgressFn | None = None, timeout: float = 30.0) -> Path:
    """Download ``wf`` from its upstream URL into the cache, verified; returns the cached path."""
    if not wf.url:
        raise WeightsError(f"{wf.path} has no download URL (it ships with the package)")
    url = wf.url

    def write(tmp: Path) -> None:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as out:
                total = int(r.headers.get("Content-Length") or 0) or None
                done = 0
                while block := r.read(1 << 16):
                    out.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise WeightsError(f"cannot download {wf.path} from {url}: {reason} (offline? "
                               "use `lightseg weights import DIR` with a local copy)") from e

    return _atomic_copy_into_cache(wf.path, write, wf.sha256)


def import_dir(folder: Path) -> list[tuple[WeightFile, str]]:
    """Copy every manifest file found in ``folder`` (by relative path or by file name) into the
    cache after verifying it. Returns ``(file, outcome)`` rows for the files found."""
    if not folder.is_dir():
        raise WeightsError(f"{folder}: not a folder")
    by_name: dict[str, list[Path]] = {}
    for p in folder.rglob("*.pth"):
        by_name.setdefault(p.name, []).append(p)
    rows: list[tuple[WeightFile, str]] = []
    for wf in manifest().values():
        if wf.url is None:
            continue  # shipped with the package
        direct = folder / wf.path
        found = [direct] if direct.is_file() else by_name.get(Path(wf.path).name, [])
        if not found:
            continue
        src = found[0]
        if sha256_of(src) != wf.sha256:
            rows.append((wf, f"skipped: {src} fails its sha256 check"))
            continue
        dest = _atomic_copy_into_cache(wf.path, lambda tmp, s=src: shutil.copyfile(s, tmp), wf.sha256)
        rows.append((wf, f"imported to {dest}"))
    return rows
