"""Where a frame is decoded: video files, stdin and network streams through PyAV (FFmpeg).

Damaged input is decoded as far as it goes: a packet the decoder rejects becomes a ``Skipped``
record and decoding continues; a container that ends early ends the source with a note. Live
streams that drop are reopened with capped exponential backoff (``reconnect`` attempts); a stream
that never opens fails within ``timeout`` seconds.

A hardware decoder (``hwaccel="cuda"``, the ``pyav-hw`` decoder) that cannot run here (no device,
no driver, no hardware decoder for this codec, or one FFmpeg could not start) falls back to
FFmpeg's software decoder; the source then says so: ``info.decoder`` names the software decoder and
``info.fallback`` says why, as soon as it is known (opening, or the first decoded frame).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import numpy as np

from ..errors import SourceError
from ..types import Frame, Skipped, SourceInfo, SourceKind, SourceReport
from .base import redact


def _rate(stream: Any) -> Fraction | None:
    for attr in ("average_rate", "guessed_rate", "base_rate"):
        r = getattr(stream, attr, None)
        if r:
            return Fraction(r.numerator, r.denominator)
    return None


class _NothingReceived(SourceError):
    """A stream or stdin that delivered nothing in time."""


def _open_error(e: BaseException, what: str, timeout: float) -> SourceError:
    """The one-line reason why ``av.open`` failed."""
    if isinstance(e, av.error.FileNotFoundError):
        return SourceError(f"{what}: no such file")
    if isinstance(e, av.error.PermissionError):
        return SourceError(f"{what}: permission denied")
    if isinstance(e, (av.error.ExitError, av.error.TimeoutError, TimeoutError)):
        return _NothingReceived(f"{what}: could not open within {timeout:g}s (nothing received)")
    if isinstance(e, av.error.FFmpegError):
        return SourceError(f"{what}: not a video FFmpeg can read ({e.strerror or e})")
    return SourceError(f"{what}: cannot read ({getattr(e, 'strerror', None) or e})")


# The pixel format of frames decoded on each hardware device type (FFmpeg's AV_PIX_FMT_CUDA...).
_HW_PIX_FMT = {"cuda": "cuda"}


def _i420(vf: Any) -> np.ndarray | None:
    """The decoded planes as they are, when they are what an overlay video encodes (yuv420p of
    limited or unknown range, even sides): a copy, far cheaper than converting the RGB image back."""
    if vf.format.name != "yuv420p" or vf.color_range == 2 or vf.width % 2 or vf.height % 2:  # 2: full range
        return None
    return vf.to_ndarray(format="yuv420p")


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
        self.fallback: str | None = None  # why the hardware decoder asked for is not decoding
        self.report = SourceReport()
        self._closed = False
        self._container = self._open()
        stream = self._container.streams.video[0]
        cc = stream.codec_context
        if hwaccel and not self.fallback and not cc.is_hwaccel:
            self.fallback = f"FFmpeg has no {hwaccel} decoder for {cc.name}"
        self.info = SourceInfo(
            kind=kind,
            uri=redact(str(target)) if kind != "stdin" else "-",
            name=name,
            width=cc.width or None,
            height=cc.height or None,
            fps=_rate(stream),
            frames=(stream.frames or None) if not self.live else None,
            codec=cc.name,
            decoder=self._decoder_name(cc),
            live=self.live,
            fallback=self.fallback,
        )

    def _decoder_name(self, cc: Any) -> str:
        name = f"pyav/ffmpeg {cc.codec.name}"
        if self.hwaccel and not self.fallback:
            return f"{name} hwaccel={self.hwaccel}"
        return f"{name} (software fallback from hwaccel={self.hwaccel})" if self.hwaccel else f"{name} (software)"

    def _fell_back(self, reason: str, cc: Any) -> None:
        """The hardware decoder turned out not to run (found while decoding): say so from now on."""
        self.fallback = reason
        self.info = replace(self.info, decoder=self._decoder_name(cc), fallback=reason)

    def _open(self) -> Any:
        """Open the container; with a hardware decoder that cannot start, open it for software
        decoding and keep the reason in ``fallback`` (a reopened stream then stays in software)."""
        if self.hwaccel and not self.fallback and self.kind != "stdin":
            try:
                from av.codec.hwaccel import HWAccel  # PyAV 14 and later

                return self._open_with(HWAccel(device_type=self.hwaccel, allow_software_fallback=True))
            except _NothingReceived:
                raise  # the source's fault, not the decoder's: no second wait
            except Exception as e:  # noqa: BLE001 - whatever stops the hardware path, software may still work
                container = self._open_with(None)  # raises the file's own problem, if it has one
                detail = getattr(e, "strerror", None) or str(e) or type(e).__name__
                self.fallback = f"FFmpeg's {self.hwaccel} decoder could not start ({detail})"
                return container
        return self._open_with(None)

    def _open_with(self, hwaccel: Any) -> Any:
        src = sys.stdin.buffer if self.kind == "stdin" else str(self.target)
        what = "stdin" if self.kind == "stdin" else redact(str(self.target))
        kwargs: dict[str, Any] = {"format": self.fmt, "options": _stream_options(str(self.target))}
        if self.live or self.kind == "stdin":
            kwargs["timeout"] = (self.timeout, self.timeout)
        if hwaccel is not None:
            kwargs["hwaccel"] = hwaccel
        try:
            container = av.open(src, "r", **kwargs)
        except (av.error.FFmpegError, OSError) as e:
            error = _open_error(e, what, self.timeout)
            if hwaccel is not None and not isinstance(error, _NothingReceived):
                raise  # perhaps the hardware decoder's fault, not the source's: _open tries software
            raise error from None
        if not container.streams.video:
            container.close()
            raise SourceError(f"{what}: has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container

    def _frames(self, container: Any) -> Iterator[Frame | Skipped]:
        """Decode one opened container; returns at end of stream, raises on a broken read."""
        stream = container.streams.video[0]
        check_hw = bool(self.hwaccel and not self.fallback)
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
            if check_hw and decoded:
                # FFmpeg drops to software when its hardware decoder fails to start on the first
                # frame; the context's pixel format then is a software one.
                check_hw = False
                cc = stream.codec_context
                if cc.pix_fmt != _HW_PIX_FMT.get(self.hwaccel, self.hwaccel):  # type: ignore[arg-type]
                    self._fell_back(f"FFmpeg's {self.hwaccel} decoder did not start for {cc.name} "
                                    f"(decoding {cc.pix_fmt} in software)", cc)
            for vf in decoded:
                t = vf.time if not self.live else time.monotonic() - self._t0
                yield Frame(index=self._next_index, image=vf.to_ndarray(format="rgb24"), time=t, i420=_i420(vf))
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
