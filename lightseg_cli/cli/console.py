"""Output conventions shared by every command: results on stdout, logs on stderr.

Rich renders on a terminal; ``NO_COLOR`` turns colour off; when stderr is not a terminal (a pipe,
CI) progress is reported as plain lines every few seconds instead of bars.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from rich.console import Console

_NO_COLOR = bool(os.environ.get("NO_COLOR"))
stdout = Console(no_color=_NO_COLOR, soft_wrap=True)
if not stdout.is_terminal and "COLUMNS" not in os.environ:
    stdout = Console(no_color=_NO_COLOR, soft_wrap=True, width=200)  # tables in pipes are not cut to 80
stderr = Console(stderr=True, no_color=_NO_COLOR, soft_wrap=True)


def interactive() -> bool:
    """True when progress bars and live panels make sense (stderr is a terminal)."""
    return stderr.is_terminal and not os.environ.get("LIGHTSEG_PLAIN")


def print_json(obj: Any) -> None:
    """One JSON document on stdout (machine output; no colour, no wrapping)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def log(message: str) -> None:
    stderr.print(message, highlight=False, markup=False)


def error(message: str) -> None:
    stderr.print(f"error: {message}", style="bold red", highlight=False, markup=False)


def warn(message: str) -> None:
    stderr.print(f"warning: {message}", style="yellow", highlight=False, markup=False)


class Throttle:
    """Lets a plain progress line through at most every ``seconds``."""

    def __init__(self, seconds: float = 5.0) -> None:
        self.seconds = seconds
        self.last = 0.0

    def ready(self, force: bool = False) -> bool:
        now = time.monotonic()
        if force or now - self.last >= self.seconds:
            self.last = now
            return True
        return False
