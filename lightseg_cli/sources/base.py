"""The protocol every frame source follows, and helpers shared by sources."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Protocol

from ..types import Frame, Skipped, SourceInfo, SourceReport


class FrameSource(Protocol):
    """Iterating yields decoded frames in order, and ``Skipped`` records for undecodable items.

    ``info`` is known once the source is open; ``report`` fills up while iterating.
    ``close()`` may be called from another thread to stop a blocking read.
    """

    info: SourceInfo
    report: SourceReport

    def __iter__(self) -> Iterator[Frame | Skipped]: ...

    def close(self) -> None: ...


def redact(uri: str) -> str:
    """Hide ``user:password@`` in URLs before they are printed or logged."""
    return re.sub(r"(?<=://)[^/@\s]+@", "***@", uri)


def natural_key(text: str) -> list:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", text)]
