"""Exceptions that carry a one-line, user-facing message and the process exit code for it.

Exit codes (documented in the README): 0 ok, 1 partial (some inputs failed), 2 usage error,
3 nothing could be processed / fatal input or output problem, 130 interrupted (SIGINT),
143 terminated (SIGTERM).
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2
EXIT_FAILED = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class LightsegError(Exception):
    """Base class: ``str(err)`` is the line shown to the user."""

    exit_code = EXIT_FAILED


class UsageError(LightsegError):
    """The command line asks for something impossible (bad size, unknown class, ...)."""

    exit_code = EXIT_USAGE


class WeightsError(LightsegError):
    """Weights missing, truncated, corrupt, or not downloadable."""


class SourceError(LightsegError):
    """A SOURCE cannot be opened or read."""


class OutputError(LightsegError):
    """An output location cannot be written."""


class DataError(LightsegError):
    """A labelled data set (list file or images/labels folder) is malformed."""


class ImageError(DataError):
    """An image file is missing, empty or cannot be decoded; ``reason`` says which."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason
