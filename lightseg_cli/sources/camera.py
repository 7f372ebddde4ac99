"""Cameras (``0``, ``/dev/video0``) through OpenCV's VideoCapture, the portable way to reach V4L2,
AVFoundation, DirectShow or a GStreamer pipeline (Jetson CSI cameras, ``csi://N``: see
:func:`csi_pipeline`)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from fractions import Fraction

import cv2

from ..errors import SourceError
from ..types import Frame, Skipped, SourceInfo, SourceReport


def csi_pipeline(sensor: int, width: int = 1920, height: int = 1080, fps: int = 30, flip: int = 0) -> str:
    """The GStreamer pipeline that reads a Jetson CSI camera: Argus (``nvarguscamerasrc``) captures
    NV12 into NVMM memory, ``nvvidconv`` flips and converts on the VIC, and OpenCV's appsink gets BGR.
    The appsink keeps only the newest frame (``drop``), as a live camera should."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! "
            f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1,format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! "
            "appsink drop=true max-buffers=1")


class CameraSource:
    """A camera: a device number or path, or with ``gstreamer`` a GStreamer pipeline string
    (``uri`` then names it in messages and ``probe``, e.g. ``csi://0``)."""

    def __init__(self, device: int | str, name: str, gstreamer: bool = False, uri: str | None = None) -> None:
        api = cv2.CAP_GSTREAMER if gstreamer else cv2.CAP_ANY
        uri = uri or str(device)
        self.cap = cv2.VideoCapture(device, api)
        if not self.cap.isOpened():
            raise SourceError(f"camera {uri}: could not be opened (is it connected and free?)")
        fps = self.cap.get(cv2.CAP_PROP_FPS)
        self.info = SourceInfo(
            kind="camera",
            uri=uri,
            name=name,
            width=int(self.cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or None,
            height=int(self.cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or None,
            fps=Fraction(fps).limit_denominator(1001) if fps and fps > 0 else None,
            decoder=f"opencv {self.cap.getBackendName()}",
            live=True,
        )
        self.report = SourceReport()
        self._closed = False

    def __iter__(self) -> Iterator[Frame | Skipped]:
        t0 = time.monotonic()
        index = 0
        misses = 0
        try:
            while not self._closed:
                ok, bgr = self.cap.read()
                if not ok:
                    misses += 1
                    if misses > 30:  # about a second of nothing: the camera is gone
                        self.report.outages.append(f"camera stopped delivering frames after frame {index}")
                        return
                    time.sleep(0.03)
                    continue
                misses = 0
                yield Frame(index=index, image=cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), time=time.monotonic() - t0)
                index += 1
        finally:
            self.cap.release()

    def close(self) -> None:
        self._closed = True
