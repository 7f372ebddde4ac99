"""Image files as a frame source: one file, a folder, or a glob, in natural order.

An unreadable or non-image file among good ones becomes a ``Skipped`` record; the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from ..errors import ImageError
from ..io.images import read_rgb
from ..types import Frame, Skipped, SourceInfo, SourceReport

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})


def unique_names(paths: list[Path]) -> list[str]:
    """Output stems; files sharing a stem (a.png, a.jpg or dir1/a.png, dir2/a.png) get suffixes."""
    seen: dict[str, int] = {}
    names = []
    for p in paths:
        n = seen.get(p.stem, 0)
        seen[p.stem] = n + 1
        names.append(p.stem if n == 0 else f"{p.stem}_{n + 1}")
    return names


class ImageSource:
    """Frames from a list of image files."""

    def __init__(self, paths: list[Path], uri: str, name: str, single: bool = False,
                 skip: Callable[[str], bool] | None = None, names: list[str] | None = None,
                 read: Callable[[Path], np.ndarray] = read_rgb) -> None:
        """``skip``: leave out the images whose output name (file stem, made unique over all of
        ``paths``) it returns True for, e.g. those whose mask exists (resuming a batch).
        ``names``: the output names when a caller chose them (a share of a larger set);
        ``read``: how a path becomes an RGB image (default: read and decode the file)."""
        self.paths = paths
        self.names = names or unique_names(paths)
        self._read = read
        size = None
        if single:
            h, w = read(paths[0]).shape[:2]
            size = (w, h)
        if skip is not None:
            kept = [(p, n) for p, n in zip(self.paths, self.names) if not skip(n)]
            self.paths, self.names = [p for p, _ in kept], [n for _, n in kept]
        self.info = SourceInfo(
            kind="image" if single else "images",
            uri=uri,
            name=name,
            width=size[0] if size else None,
            height=size[1] if size else None,
            frames=len(self.paths),
            decoder="opencv-imdecode",
        )
        self.report = SourceReport()
        self._closed = False

    def __iter__(self) -> Iterator[Frame | Skipped]:
        for i, (path, name) in enumerate(zip(self.paths, self.names)):
            if self._closed:
                return
            try:
                image = self._read(path)
            except ImageError as e:
                item = Skipped(str(path), e.reason, i)
                self.report.skipped.append(item)
                yield item
                continue
            yield Frame(index=i, image=image, name=name, path=path)

    def close(self) -> None:
        self._closed = True
