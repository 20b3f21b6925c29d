"""A stream pusher for the live tests, with PyAV only (no ffmpeg binary):
it remuxes a video file's packets into MPEG-TS on a named pipe or a
loopback TCP address, each packet when its timestamp falls due (``ffmpeg
-re``), or as fast as the reader takes them."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import av
import numpy as np


def write_ts(path: Path, frames: np.ndarray, fps: int, gop: int = 8) -> Path:
    """(T, H, W, 3) uint8 frames as an H.264 MPEG-TS file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mpegts") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "g": str(gop), "bf": "0"}
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class Pusher(threading.Thread):
    """Send ``video``'s packets to ``target`` (a named pipe or a URL) as
    MPEG-TS (a ``tcp://127.0.0.1:PORT`` URL: connects to a listening reader). ``realtime``: each packet when its time comes. ``stop_after``:
    send only that many packets, then ``hold`` seconds with the stream open
    (a stall) before closing. ``times``: send the file that many times over
    (a restart: timestamps go back)."""

    def __init__(self, video: Path, target: str, realtime: bool = True, stop_after: int | None = None,
                 hold: float = 0.0, times: int = 1):
        super().__init__(daemon=True)
        self.video, self.target, self.realtime = video, target, realtime
        self.stop_after, self.hold, self.times = stop_after, hold, times
        self.error: BaseException | None = None
        self.sent = 0

    def run(self) -> None:
        try:
            self._push()
        except BaseException as exc:  # the test reads it
            self.error = exc

    def _push(self) -> None:
        if self.target.startswith("tcp://"):  # the reader listens: connect once it does
            import socket

            host, port = self.target[len("tcp://"):].split(":")
            deadline = time.monotonic() + 10
            while True:
                try:
                    connection = socket.create_connection((host, int(port)))
                    break
                except ConnectionRefusedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with connection, connection.makefile("wb", buffering=0) as sink:
                self._rounds(lambda: av.open(sink, "w", format="mpegts"))
            return
        with open(self.target, "wb", buffering=0) as pipe:  # one pipe; a new MPEG-TS stream each round
            self._rounds(lambda: av.open(pipe, "w", format="mpegts"))

    def _rounds(self, output) -> None:
        for _ in range(self.times):
            out = output()
            with av.open(str(self.video)) as source:
                video = source.streams.video[0]
                stream = out.streams.video[0] if out.streams.video else out.add_stream_from_template(video)
                start, first = time.monotonic(), None
                for packet in source.demux(video):
                    if packet.dts is None:
                        continue
                    first = packet.pts if first is None else first
                    if self.realtime:
                        due = start + float((packet.pts - first) * video.time_base)
                        time.sleep(max(0.0, due - time.monotonic()))
                    packet.stream = stream
                    out.mux(packet)
                    self.sent += 1
                    if self.stop_after is not None and self.sent >= self.stop_after:
                        time.sleep(self.hold)
                        out.close()
                        return
            out.close()


def fifo(path: Path) -> str:
    os.mkfifo(path)
    return str(path)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
