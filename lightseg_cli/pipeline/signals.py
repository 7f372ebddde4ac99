"""SIGINT and SIGTERM as stop requests, for the length of a ``with`` block."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def handle_signals(stop: Callable[[str], None], signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Inside the block each of ``signals`` calls ``stop`` with its name (``"SIGINT"``,
    ``"SIGTERM"``) instead of killing the process; the previous handlers are back afterwards.

    ``stop`` runs on the main thread between bytecodes, so it must only set flags and close
    things; :meth:`Pipeline.request_stop` is such a function (a first call drains and stops, a
    second aborts). Python only lets the main thread install handlers: elsewhere the block runs
    with the handlers left as they are.
    """
    previous: dict[int, Any] = {}
    try:
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                name = signal.Signals(sig).name
                previous[sig] = signal.signal(sig, lambda _sig, _frame, n=name: stop(n))
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
