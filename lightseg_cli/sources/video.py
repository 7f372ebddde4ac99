"""Where a frame is decoded: video files, stdin and network streams through PyAV (FFmpeg).

Damaged input is decoded as far as it goes: a packet the decoder rejects becomes a ``Skipped``
record and decoding continues; a container that ends early ends the source with a note. Live
streams that drop are reopened with capped exponential backoff (``reconnect`` attempts); a stream
that never opens fails within ``timeout`` seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error

from ..errors import SourceError
from ..types import Frame, Skipped, SourceInfo, SourceKind, SourceReport
from .base import redact


def _rate(stream: Any) -> Fraction | None:
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        r = getattr(stream, attr, None)
        if r:
            return Fraction(r.numerator, r.denominator)
    return None


def _stream_options(uri: str) -> dict[str, str]:
    if uri.startswith("rtsp://"):
        return {"rtsp_transport": "tcp"}
    if uri.startswith("udp://"):
        return {"overrun_nonfatal": "1", "fifo_size": "1000000"}
    return {}


class AVSource:
    """A PyAV-decoded source: a file, ``-`` (stdin) or a network URL."""

    def __init__(
        self,
        target: str | Path,
        kind: SourceKind,
        name: str,
        *,
        timeout: float = 10.0,
        reconnect: int = 3,
        fmt: str | None = None,
        hwaccel: str | None = None,
    ) -> None:
        self.target = target
        self.kind = kind
        self.live = kind == "stream"
        self.timeout = timeout
        self.reconnect = reconnect if self.live else 0
        self.fmt = fmt
        self.hwaccel = hwaccel
        self.report = SourceReport()
        self._closed = False
        self._container = self._open()
        stream = self._container.streams.video[0]
        cc = stream.codec_context
        self.info = SourceInfo(
            kind=kind,
            uri=redact(str(target)) if kind != "stdin" else "-",
            name=name,
            width=cc.width or None,
            height=cc.height or None,
            fps=_rate(stream),
            frames=(stream.frames or None) if not self.live else None,
            codec=cc.name,
            decoder=f"pyav/ffmpeg {cc.codec.name}" + (f" hwaccel={hwaccel}" if hwaccel else " (software)"),
            live=self.live,
        )

    def _open(self) -> Any:
        src = sys.stdin.buffer if self.kind == "stdin" else str(self.target)
        what = "stdin" if self.kind == "stdin" else redact(str(self.target))
        kwargs: dict[str, Any] = {"format": self.fmt, "options": _stream_options(str(self.target))}
        if self.live or self.kind == "stdin":
            kwargs["timeout"] = (self.timeout, self.timeout)
        if self.hwaccel:
            from av.codec.hwaccel import HWAccel

            kwargs["hwaccel"] = HWAccel(device_type=self.hwaccel, allow_software_fallback=True)
        try:
            container = av.open(src, "r", **kwargs)
        except av.error.FileNotFoundError:
            raise SourceError(f"{what}: no such file") from None
        except av.error.PermissionError:
            raise SourceError(f"{what}: permission denied") from None
        except (av.error.ExitError, av.error.TimeoutError, TimeoutError):
            raise SourceError(f"{what}: could not open within {self.timeout:g}s (nothing received)") from None
        except av.error.FFmpegError as e:
            raise SourceError(f"{what}: not a video FFmpeg can read ({e.strerror or e})") from None
        except OSError as e:
            raise SourceError(f"{what}: cannot read ({e.strerror or e})") from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{what}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container

    def _frames(self, container: Any) -> Iterator[Frame | Skipped]:
        """Decode one opened container; returns at end of stream, raises on a broken read."""
        stream = container.streams.video[0]
        for packet in container.demux(stream):
            if self._closed:
                return
            try:
                decoded = packet.decode()
            except av.error.FFmpegError as e:
                when = f" at {float(packet.pts * packet.time_base):.2f}s" if packet.pts is not None else ""
                item = Skipped(f"packet{when}", f"undecodable ({e.strerror or e})", self._next_index)
                self.report.skipped.append(item)
                yield item
                continue
            for vf in decoded:
                t = vf.time if not self.live else time.monotonic() - self._t0
                yield Frame(index=self._next_index, image=vf.to_ndarray(format="rgb24"), time=t)
                self._next_index += 1

    def _reconnect(self, reason: str, attempts: int) -> tuple[Any, int]:
        """Reopen a lost live stream with capped exponential backoff; ``(None, n)`` when giving up."""
        while attempts < self.reconnect and not self._closed:
            delay = min(0.5 * 2**attempts, 8.0)
            attempts += 1
            self.report.outages.append(f"stream lost after frame {self._next_index} ({reason}); "
                                       f"reconnect {attempts}/{self.reconnect} in {delay:g}s")
            time.sleep(delay)
            try:
                container = self._open()
            except SourceError as e:
                reason = str(e)
                continue
            self.report.reconnects += 1
            return container, attempts
        if self.reconnect and not self._closed:
            self.report.outages.append(f"gave up after {attempts} reconnect attempts ({reason})")
        return None, attempts

    def __iter__(self) -> Iterator[Frame | Skipped]:
        self._t0 = time.monotonic()
        self._next_index = 0
        container = self._container
        attempts = 0  # consecutive reconnects that brought no frame
        while container is not None:
            error: str | None = None
            try:
                for item in self._frames(container):
                    if isinstance(item, Frame):
                        attempts = 0
                    yield item
            except (av.error.FFmpegError, OSError) as e:
                error = getattr(e, "strerror", None) or str(e)
            finally:
                container.close()
            if self._closed:
                return
            if not self.live:
                self._account_for_damage(error)
                return
            container, attempts = self._reconnect(error or "end of stream", attempts)

    def _account_for_damage(self, error: str | None) -> None:
        """After a file is read to its end: note frames that the container announced but that
        never decoded (truncation, corrupt packets) and why reading stopped early."""
        expected = self.info.frames
        if expected and self._next_index < expected:
            self.report.missing = expected - self._next_index
            self.report.outages.append(f"{self.report.missing} of {expected} frames could not be decoded")
        if error:
            self.report.outages.append(f"input ended early after {self._next_index} frames: {error}")

    def close(self) -> None:
        self._closed = True
