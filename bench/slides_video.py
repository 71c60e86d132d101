"""The slide benchmark's baseline: the same page changes sent as screen-share video.

The pages are encoded as one VP8 stream (libvpx through PyAV, real-time settings, constant
bitrate, no keyframe but the first, as a screen share runs) at 1–5 fps. Each frame's quality
is its luma PSNR against the page it shows, decoded from the very bytes that are sent. The
frames then cross the emulated link over TCP (in order and reliable, standing in for RTP with
retransmissions; no FEC, no frame dropping), sent at their capture times; the receiver notes
when each frame has fully arrived. A page is sharp when the first frame of it whose PSNR
reaches the threshold has arrived.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np

from .netlab import Link
from .quality import psnr

HEADER = struct.Struct("!II")  # frame index, length
PORT = 9700


@dataclass
class EncodedStream:
    fps: float
    frames: list[bytes]
    capture_s: list[float]  # from the start of the stream
    pages: list[int]
    psnr_db: list[float]


def luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV)[..., 0]


def encode(
    pages: dict[int, np.ndarray], schedule: list[int], interval_s: float, fps: float,
    bitrate: int,
) -> EncodedStream:
    """The schedule's pages as video at `fps`: page schedule[i] from i * interval_s on."""
    height, width = next(iter(pages.values())).shape[:2]
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, 1000)
    enc.framerate = Fraction(fps).limit_denominator(1000)
    enc.bit_rate = bitrate
    enc.gop_size = 100_000  # a screen share sends keyframes only when asked
    enc.options = {
        "deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0",
        "minrate": str(bitrate), "maxrate": str(bitrate), "bufsize": str(bitrate),
        "qmin": "2", "qmax": "56", "static-thresh": "0", "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    dec = av.CodecContext.create("vp8", "r")
    lumas = {n: luma(img) for n, img in pages.items()}
    source = {n: av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
              for n, img in pages.items()}
    total = len(schedule) * interval_s
    out = EncodedStream(fps, [], [], [], [])
    k = 0
    while (t := k / fps) < total:
        page = schedule[min(len(schedule) - 1, int(t // interval_s))]
        frame = source[page]
        frame.pts = int(t * 1000)
        frame.time_base = enc.time_base
        packets = enc.encode(frame)
        data = b"".join(bytes(p) for p in packets)
        decoded = [f for p in packets for f in dec.decode(p)]
        shown = decoded[-1].to_ndarray(format="rgb24") if decoded else None
        out.frames.append(data)
        out.capture_s.append(t)
        out.pages.append(page)
        out.psnr_db.append(psnr(luma(shown), lumas[page]) if shown is not None else 0.0)
        k += 1
    return out


async def send_over(link: Link, stream: EncodedStream) -> tuple[float, list[float | None]]:
    """Send the frames from ns a to ns b at their capture times. Returns (mono of capture 0,
    arrival mono per frame, None when it never arrived)."""
    loop = asyncio.get_running_loop()
    arrivals: list[float | None] = [None] * len(stream.frames)
    done = asyncio.Event()

    async def receive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                index, length = HEADER.unpack(await reader.readexactly(HEADER.size))
                await reader.readexactly(length)
                arrivals[index] = time.monotonic()
                if index == len(stream.frames) - 1:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            done.set()

    listener = link.socket_in("b", socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("", PORT))  # the socket lives in ns b: its only address there is addr_b
    listener.listen()
    listener.setblocking(False)
    server = await asyncio.start_server(receive, sock=listener)
    sender = link.socket_in("a", socket.AF_INET, socket.SOCK_STREAM)
    sender.setblocking(False)
    try:
        await asyncio.wait_for(loop.sock_connect(sender, (link.addr_b, PORT)), 10)
        _, writer = await asyncio.open_connection(sock=sender)
        start = time.monotonic() + 0.2
        for index, (data, t) in enumerate(zip(stream.frames, stream.capture_s, strict=True)):
            await asyncio.sleep(max(0.0, start + t - time.monotonic()))
            writer.write(HEADER.pack(index, len(data)) + data)
            await writer.drain()
        last = stream.capture_s[-1] if stream.capture_s else 0.0
        try:
            await asyncio.wait_for(done.wait(), max(10.0, last))
        except TimeoutError:
            pass
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return start, arrivals


def sharp_times(
    stream: EncodedStream, start: float, arrivals: list[float | None], schedule: list[int],
    interval_s: float, threshold_db: float,
) -> list[float | None]:
    """Per page change (after the first page), seconds from the change until the first frame
    of that page at or above the threshold arrived; None: not before the next change."""
    out: list[float | None] = []
    for i in range(1, len(schedule)):
        begin, end = i * interval_s, (i + 1) * interval_s
        change = start + begin
        found = None
        for k, t in enumerate(stream.capture_s):
            if begin <= t < end and stream.psnr_db[k] >= threshold_db and arrivals[k]:
                found = arrivals[k] - change
                break
        out.append(found)
    return out
