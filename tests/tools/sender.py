"""Stream a video file as MPEG-TS to a URL at its real frame rate (a stand-in for a camera/encoder).

    python sender.py INPUT URL [--loops N] [--frames N]

URL is anything FFmpeg writes to: udp://127.0.0.1:5000, tcp://127.0.0.1:5001 ...
"""

from __future__ import annotations

import argparse
import time

import av


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("url")
    ap.add_argument("--loops", type=int, default=1)
    ap.add_argument("--frames", type=int, default=0)
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    a = ap.parse_args()
    with av.open(a.input) as probe:
        src = probe.streams.video[0]
        rate, w, h = src.average_rate, src.width, src.height
    deadline = time.monotonic() + a.connect_timeout
    while True:  # a TCP receiver may not be listening yet: retry until it is
        try:
            out = av.open(a.url, "w", format="mpegts")
            stream = out.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            stream.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "10"}
            out.start_encoding()
            break
        except av.error.FFmpegError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    sent, t0 = 0, time.monotonic()
    for _ in range(a.loops):
        with av.open(a.input) as inp:
            for frame in inp.decode(video=0):
                frame.pts = None
                for p in stream.encode(frame):
                    out.mux(p)
                sent += 1
                due = t0 + sent / float(rate)
                time.sleep(max(0.0, due - time.monotonic()))
                if a.frames and sent >= a.frames:
                    break
        if a.frames and sent >= a.frames:
            break
    for p in stream.encode(None):
        out.mux(p)
    out.close()
    print(sent, flush=True)


if __name__ == "__main__":
    main()
