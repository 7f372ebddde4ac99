"""Bounded queues between pipeline stages, with an explicit back-pressure policy.

``wait``: a full queue blocks the producer (files: never drop a frame, keep order).
``drop-oldest``: a full queue discards its oldest item (live sources: bounded latency); drops
are counted. Every blocking call wakes up when the pipeline aborts, so no stage can hang, and an
aborted queue hands out nothing more.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Literal

Policy = Literal["wait", "drop-oldest"]


class _End:
    def __repr__(self) -> str:
        return "END"


END: Any = _End()  # end-of-stream marker, passed downstream exactly once per stage


class Channel:
    def __init__(self, name: str, maxsize: int, abort: threading.Event, policy: Policy = "wait") -> None:
        if maxsize < 1:
            raise ValueError(f"queue {name}: size must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self.policy = policy
        self.abort = abort
        self.dropped = 0
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()

    def put(self, item: Any) -> bool:
        """Queue an item; returns False (item discarded) if the pipeline aborted while waiting."""
        with self._cond:
            if item is not END:
                if self.policy == "drop-oldest":
                    while len(self._items) >= self.maxsize and self._items[0] is not END:
                        self._items.popleft()
                        self.dropped += 1
                else:
                    while len(self._items) >= self.maxsize:
                        if self.abort.is_set():
                            return False
                        self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, block: bool = True) -> Any:
        """Next item; END when the stream ended or the pipeline aborted; None if empty and not blocking.

        After an abort every call returns END at once, also with items still queued: each stage stops
        after the item in its hands, so no stage thread is left running (in a torch op, say) when the
        run returns and the process exits."""
        with self._cond:
            if self.abort.is_set():
                return END
            while not self._items:
                if self.abort.is_set():
                    return END
                if not block:
                    return None
                self._cond.wait(0.1)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    @property
    def fill(self) -> float:
        return min(len(self._items), self.maxsize) / self.maxsize
