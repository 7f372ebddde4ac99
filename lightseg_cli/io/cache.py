"""The user cache folder: ``$XDG_CACHE_HOME/lightseg`` (default ``~/.cache/lightseg``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """``$XDG_CACHE_HOME/lightseg/<parts...>``, read from the environment on every call (tests move it)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base, "lightseg", *parts)
