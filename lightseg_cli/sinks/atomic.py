"""Atomic file writes: write beside the destination, then rename, so a kill never leaves a
truncated file under the final name."""

from __future__ import annotations

import os
from pathlib import Path


def temp_path(dest: Path) -> Path:
    """A hidden sibling of ``dest`` with the same suffix (some writers choose the format from it)."""
    return dest.with_name(f".{dest.stem}.part{dest.suffix}")


def write_bytes(dest: Path, data: bytes) -> None:
    tmp = temp_path(dest)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def commit(tmp: Path, dest: Path) -> None:
    os.replace(tmp, dest)


def remove_partials(folder: Path) -> int:
    """Delete temporary files a killed run left behind in ``folder`` and its sub-folders."""
    n = 0
    for p in folder.rglob(".*.part*"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n
