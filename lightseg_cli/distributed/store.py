"""The output folder of a distributed run, which every worker writes into itself.

``--out`` is a path (this machine's disk, or a mount every node shares) or a filesystem URI that
pyarrow opens (``s3://bucket/run1``, ``gs://…``, ``hdfs://…``, ``file:///…``; the filesystem layer
Ray Data uses). Workers run the local pipeline into a folder from :meth:`Store.staged`: the output
folder itself for a path (the sinks write atomically in place), a temporary folder for a URI, whose
files are then uploaded each under a temporary name and moved to its final one. Either way a
killed worker never leaves a half-written file under a final name, only ``.<stem>.part<suffix>``
leftovers that :meth:`Store.clean` removes.
"""

from __future__ import annotations

import fnmatch
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import OutputError, UsageError
from ..io import atomic
from ..sinks.outputs import output_dir

PARTIAL = ".*.part*"  # atomic.temp_path's names


class Store:
    """An output folder on this machine or on a mount every worker shares."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def show(self, rel: str) -> Path | str:
        """How an output is named to the user."""
        return self.root / rel

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """A local folder to write outputs into; they are in the store when the block ends."""
        yield self.root

    def listing(self, folder: str) -> set[str]:
        """The names of the finished files directly in ``folder`` (relative to the store)."""
        d = self.root / folder
        return {p.name for p in d.iterdir() if p.is_file() and not p.name.startswith(".")} if d.is_dir() else set()

    def write_bytes(self, rel: str, data: bytes) -> None:
        try:
            atomic.write_bytes(self.root / rel, data)
        except OSError as e:
            raise OutputError(f"{self.show(rel)}: cannot write ({e.strerror or e})") from None

    def clean(self) -> None:
        """Remove the temporary files of killed writers."""
        atomic.remove_partials(self.root)


class UriStore(Store):
    """An output folder behind a pyarrow filesystem (object stores included)."""

    def __init__(self, uri: str, fs: Any, base: str) -> None:  # no local root: every method is its own
        self.uri, self.fs, self.base = uri.rstrip("/"), fs, base.rstrip("/")

    def __str__(self) -> str:
        return self.uri

    def show(self, rel: str) -> str:
        return f"{self.uri}/{rel}".rstrip("/")

    @contextmanager
    def staged(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="lightseg-stage-") as tmp:
            try:
                yield Path(tmp)
            finally:  # what the sinks finished is kept, also when the unit failed later
                for f in sorted(Path(tmp).rglob("*")):
                    if f.is_file() and not f.name.startswith("."):
                        self._upload(f, f.relative_to(tmp).as_posix())

    def _put(self, rel: str, copy: Any) -> None:
        """Write ``rel`` through a temporary name and a move: readers never see it half-written."""
        dest = PurePosixPath(self.base, rel)
        tmp = atomic.temp_path(dest)  # type: ignore[arg-type]
        try:
            self.fs.create_dir(str(dest.parent), recursive=True)
            with self.fs.open_output_stream(str(tmp)) as out:
                copy(out)
            self.fs.move(str(tmp), str(dest))
        except OSError as e:
            raise OutputError(f"{self.show(rel)}: cannot write ({e})") from None

    def _upload(self, local: Path, rel: str) -> None:
        with open(local, "rb") as src:
            self._put(rel, lambda out: shutil.copyfileobj(src, out, 1 << 20))

    def write_bytes(self, rel: str, data: bytes) -> None:
        self._put(rel, lambda out: out.write(data))

    def _files(self, folder: str, recursive: bool) -> list[Any]:
        from pyarrow import fs as pafs

        selector = pafs.FileSelector(str(PurePosixPath(self.base, folder)), allow_not_found=True, recursive=recursive)
        return [i for i in self.fs.get_file_info(selector) if i.type == pafs.FileType.File]

    def listing(self, folder: str) -> set[str]:
        return {i.base_name for i in self._files(folder, False) if not i.base_name.startswith(".")}

    def clean(self) -> None:
        for i in self._files("", True):
            if fnmatch.fnmatch(i.base_name, PARTIAL):
                self.fs.delete_file(i.path)


def open_store(out: str, exist_ok: bool) -> Store:
    """The output folder ``out``. A path is chosen as a local run chooses it (a non-empty folder
    gets a ``-2``, ``-3``… suffix unless ``exist_ok``); a URI is used as given, and one that holds
    files already needs ``exist_ok``."""
    if "://" not in out:
        return Store(output_dir(Path(out).absolute(), exist_ok=exist_ok))
    try:
        from pyarrow import fs as pafs
    except ImportError:
        raise UsageError(f"--out {out}: a URI destination needs pyarrow: pip install 'lightseg[ray]'") from None
    try:
        fs, root = pafs.FileSystem.from_uri(out)
        store = UriStore(out, fs, root)
        fs.create_dir(root, recursive=True)
    except (OSError, ValueError) as e:
        raise OutputError(f"{out}: cannot open the output location ({e})") from None
    if not exist_ok and store._files("", True):
        raise OutputError(f"{out}: has files already; --exist-ok writes into it, --skip-existing resumes a run there")
    return store
