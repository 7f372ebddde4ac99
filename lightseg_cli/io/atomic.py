"""Atomic file writes: write beside the destination, then rename, so a kill never leaves a
truncated file under the final name. Every file lightseg writes whole goes through here (logs that
grow a line at a time, like a training run's ``metrics.jsonl``, are appended instead)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temp_path(dest: Path) -> Path:
    """A hidden sibling of ``dest`` with the same suffix (some writers choose the format from it)."""
    return dest.with_name(f".{dest.stem}.part{dest.suffix}")


@contextmanager
def replacing(dest: Path, *, unique: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``dest`` to write; when the block ends normally it replaces
    ``dest`` in one rename, when it raises it is deleted and ``dest`` is untouched.

    ``unique`` gives the temporary file a random name, for writers that may run at the same time
    on the same destination (two downloads into the cache)."""
    if unique:
        fd, name = tempfile.mkstemp(prefix=f".{dest.stem}.", suffix=f".part{dest.suffix}", dir=dest.parent)
        os.close(fd)
        tmp = Path(name)
    else:
        tmp = temp_path(dest)
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(dest: Path, data: bytes) -> None:
    with replacing(dest) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(dest: Path, text: str) -> None:
    with replacing(dest) as tmp:
        tmp.write_text(text)


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
