"""Play a video file as a live MPEG-TS stream, with PyAV only (no ffmpeg
binary): each packet is sent when its timestamp falls due (``ffmpeg -re``),
to a named pipe or to a TCP listener on this machine (``uglspot spot --live
"tcp://127.0.0.1:PORT?listen=1"``). Prints one JSON line when done.

    PYTHONPATH=src python benchmarks/live_push.py VIDEO tcp://127.0.0.1:5000 [--fast]
    PYTHONPATH=src python benchmarks/live_push.py VIDEO /tmp/feed        # a named pipe (made if missing)
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time
from pathlib import Path

import av


def push(video: Path, sink, realtime: bool) -> int:
    sent = 0
    with av.open(str(video)) as source, av.open(sink, "w", format="mpegts") as out:
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream)
        start, first = time.monotonic(), None
        for packet in source.demux(stream):
            if packet.dts is None:
                continue
            first = packet.pts if first is None else first
            if realtime:
                time.sleep(max(0.0, start + float((packet.pts - first) * stream.time_base) - time.monotonic()))
            packet.stream = target
            out.mux(packet)
            sent += 1
    return sent


def connect(address: str, wait: float = 30.0) -> socket.socket:
    host, port = address.split(":")
    deadline = time.monotonic() + wait
    while True:
        try:
            return socket.create_connection((host, int(port)))
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", type=Path)
    parser.add_argument("target", help="tcp://HOST:PORT (a listener) or a named pipe")
    parser.add_argument("--fast", action="store_true", help="send as fast as the reader takes it")
    args = parser.parse_args()
    began = time.monotonic()
    if args.target.startswith("tcp://"):
        with connect(args.target[len("tcp://"):]) as connection, connection.makefile("wb", buffering=0) as sink:
            sent = push(args.video, sink, not args.fast)
    else:
        if not os.path.exists(args.target):
            os.mkfifo(args.target)
        with open(args.target, "wb", buffering=0) as sink:
            sent = push(args.video, sink, not args.fast)
    print(json.dumps({"video": str(args.video), "target": args.target, "packets": sent,
                      "seconds": round(time.monotonic() - began, 2)}))


if __name__ == "__main__":
    main()
