"""RTP payload for redundant audio (RFC 2198), as Chrome decodes it (`red/48000/2`).

Each packet carries the current Opus frame and a copy of the previous one: on a link with 3%
random loss a frame is lost only when two packets in a row are (about 0.1%), for twice the
audio bitrate — speech is what students must not lose, and audio is a small share of a lesson.
"""

from __future__ import annotations

import struct

MAX_BLOCK = 1023  # a redundant block's length has 10 bits
MAX_OFFSET = 0x3FFF  # its timestamp offset 14 bits


def pack(pt: int, primary: bytes, redundant: list[tuple[bytes, int]]) -> bytes:
    """A RED payload: `redundant` is [(older frame, timestamp offset)], oldest first."""
    blocks = [(d, o) for d, o in redundant if len(d) <= MAX_BLOCK and 0 < o <= MAX_OFFSET]
    header = b"".join(
        struct.pack("!BH", 0x80 | pt, (offset << 2) | (len(data) >> 8)) + bytes([len(data) & 0xFF])
        for data, offset in blocks
    )
    return header + bytes([pt]) + b"".join(d for d, _ in blocks) + primary


def parse(payload: bytes) -> list[tuple[bytes, int]]:
    """[(frame, timestamp offset)] oldest first, the primary last with offset 0.

    Raises ValueError on a malformed payload.
    """
    headers: list[tuple[int, int]] = []
    pos = 0
    while True:
        if pos >= len(payload):
            raise ValueError("RED payload ends inside its headers")
        if not payload[pos] & 0x80:
            pos += 1  # the primary's one-byte header
            break
        if pos + 4 > len(payload):
            raise ValueError("RED block header truncated")
        word = int.from_bytes(payload[pos + 1 : pos + 4], "big")
        headers.append((word >> 10, word & 0x3FF))
        pos += 4
    frames = []
    for offset, length in headers:
        if pos + length > len(payload):
            raise ValueError("RED block longer than the payload")
        frames.append((payload[pos : pos + length], offset))
        pos += length
    frames.append((payload[pos:], 0))
    return frames


class RedPacker:
    """Keeps the last frame to send again with the next (distance 1)."""

    def __init__(self, pt: int, distance: int = 1) -> None:
        self.pt = pt
        self.distance = distance
        self._history: list[tuple[bytes, int]] = []  # (frame, its RTP timestamp)

    def pack(self, primary: bytes, timestamp: int) -> bytes:
        redundant = (
            [(data, (timestamp - ts) & 0xFFFFFFFF) for data, ts in self._history[-self.distance :]]
            if self.distance
            else []
        )
        self._history = (self._history + [(primary, timestamp)])[-max(self.distance, 1) :]
        return pack(self.pt, primary, redundant)
