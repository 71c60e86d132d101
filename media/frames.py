"""Encoded frames as the SFU forwards them, and codec-specific facts about them."""

from __future__ import annotations

from dataclasses import dataclass

VIDEO_CLOCK = 90_000
AUDIO_CLOCK = 48_000


@dataclass(slots=True)
class EncodedFrame:
    """One complete encoded frame (video) or packet (audio), never decoded by the SFU."""

    data: bytes
    timestamp: int  # RTP timestamp of the source stream
    keyframe: bool
    arrival: float  # monotonic time the frame's first packet reached us


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an assembled frame can be decoded on its own.

    `codec` is the lower-case codec name ("vp8", "h264", "opus").
    """
    if codec == "vp8":
        # VP8 frame tag (RFC 6386 9.1): bit 0 of the first byte is 0 on a key frame.
        return bool(data) and not data[0] & 0x01
    if codec == "h264":
        return _h264_has_idr(data)
    return True  # audio: every packet stands alone


def starts_frame(codec: str, payload: bytes) -> bool:
    """Whether an RTP payload (before depayloading) is the first packet of a frame.

    Lets the assembler begin with the very first frame it sees, which is usually the keyframe
    a new subscription starts with.
    """
    if not payload:
        return False
    if codec == "vp8":
        # RFC 7741 payload descriptor: S bit set and partition index 0.
        return bool(payload[0] & 0x10) and payload[0] & 0x07 == 0
    if codec == "h264":
        nal = payload[0] & 0x1F
        if nal == 28:  # FU-A: its start bit, on the first fragment of a frame's first NAL
            return len(payload) > 1 and bool(payload[1] & 0x80) and payload[1] & 0x1F in (1, 5)
        return nal in (1, 5, 7, 24)  # a slice, SPS or STAP-A (SPS+PPS ahead of an IDR)
    return True


def _h264_has_idr(data: bytes) -> bool:
    # aiortc hands H264 frames over as Annex B; look for an IDR slice (5) or SPS (7).
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        if data[start + 3] & 0x1F in (5, 7):
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False
