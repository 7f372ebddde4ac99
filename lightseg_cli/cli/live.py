"""Progress while a pipeline runs: a Rich live panel on a terminal, plain lines elsewhere."""

from __future__ import annotations

import threading
from typing import Any, Protocol

from rich.live import Live
from rich.table import Table

from . import console


class Watched(Protocol):
    """A running job whose live figures are shown: a pipeline, or a distributed run (whose
    snapshot counts ``"unit": "files"`` instead of frames)."""

    def snapshot(self) -> dict[str, Any]: ...


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:7.1f}"


def _eta(s: float | None) -> str:
    if s is None:
        return "-"
    m, sec = divmod(int(s), 60)
    return f"{m}:{sec:02d}"


def _rate(snap: dict[str, Any]) -> tuple[str, str]:
    """What is counted (frames, files) and the name of its rate."""
    unit = snap.get("unit", "frames")
    return unit, "FPS" if unit == "frames" else f"{unit}/s"


def panel(snap: dict[str, Any], title: str) -> Table:
    total = snap["total"]
    done = f"{snap['frames']}/{total}" if total else str(snap["frames"])
    unit, rate = _rate(snap)
    grid = Table.grid()
    grid.add_row(f"[bold]{title}[/bold]")
    grid.add_row(f"{rate} [bold]{snap['fps']:.1f}[/bold] (avg {snap['fps_avg']:.1f})  ·  {unit} {done}  ·  "
                 f"ETA {_eta(snap['eta'])}  ·  dropped {snap['dropped']}  ·  skipped {snap['skipped']}")
    stages = Table(box=None, padding=(0, 1), show_edge=False)
    stages.add_column("stage")
    stages.add_column("ms/frame", justify="right")
    stages.add_column("queue after", justify="right")
    fills = list(snap["queues"].values())
    for i, (name, ms) in enumerate(snap["stages_ms"].items()):
        label = f"{name} x{snap['workers']}" if name == "infer" and snap["workers"] > 1 else name
        mark = " [red]<- bottleneck[/red]" if name == snap["bottleneck"] else ""
        fill = f"{fills[i] * 100:3.0f}%" if i < len(fills) else ""
        stages.add_row(label + mark, _ms(ms), fill)
    grid.add_row(stages)
    return grid


def plain_line(snap: dict[str, Any]) -> str:
    total = f"/{snap['total']}" if snap["total"] else ""
    stages = " ".join(f"{k}={_ms(v).strip()}" for k, v in snap["stages_ms"].items())
    unit, rate = _rate(snap)
    return (f"{unit} {snap['frames']}{total} {rate.lower()} {snap['fps']:.1f} (avg {snap['fps_avg']:.1f}) "
            f"eta {_eta(snap['eta'])} dropped {snap['dropped']} skipped {snap['skipped']} ms: {stages} "
            f"bottleneck {snap['bottleneck']}")


class Progress:
    """Context manager that reports on ``pipe`` until the block ends: the live panel on a terminal,
    one plain line every ``every`` seconds off a terminal or with ``plain`` (``--quiet``)."""

    def __init__(self, pipe: Watched, title: str, plain: bool = False, every: float = 5.0) -> None:
        self.pipe, self.title, self.plain, self.every = pipe, title, plain, every
        self._stop = threading.Event()
        self._live: Live | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if console.interactive() and not self.plain:
            self._live = Live(get_renderable=lambda: panel(self.pipe.snapshot(), self.title),
                              console=console.stderr, refresh_per_second=4, transient=False)
            self._live.start()
        else:
            self._thread = threading.Thread(target=self._plain, daemon=True, name="progress")
            self._thread.start()
        return self

    def _plain(self) -> None:
        while not self._stop.wait(self.every):
            console.log(plain_line(self.pipe.snapshot()))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._live:
            self._live.stop()
        if self._thread:
            self._thread.join(1.0)
