"""A subscriber's outgoing track: takes frames from one Source, hands av.Packets to aiortc.

aiortc's RTCRtpSender re-packetizes an av.Packet without encoding. One DownTrack lives as long
as its transceiver; it can be re-bound to another source (the sender never sees a track end).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamTrack

from .frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame
from .source import Source
from .stats import ForwardStats

# A subscriber that falls this far behind starts over at the next keyframe: late video is
# worse than a skip.
MAX_QUEUED_FRAMES = {"video": 30, "audio": 50}
# RTP timestamp step inserted when the stream switches source (one video frame / audio packet).
SWITCH_STEP = {"video": VIDEO_CLOCK // 30, "audio": AUDIO_CLOCK // 50}


class DownTrack(MediaStreamTrack):
    def __init__(self, kind: str, stats: ForwardStats) -> None:
        super().__init__()
        self.kind = kind
        self._stats = stats
        self._clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        self._time_base = Fraction(1, self._clock)
        self._queue: deque[EncodedFrame] = deque()
        self._ready = asyncio.Event()
        self._source: Source | None = None
        self._waiting_keyframe = kind == "video"
        self._offset: int | None = None
        self._last_out: int | None = None
        self._in_flight: float | None = None
        self.frames_sent = 0

    @property
    def source(self) -> Source | None:
        return self._source

    def bind(self, source: Source | None) -> None:
        """Forward `source` from now on (None: go quiet)."""
        if source is self._source:
            return
        if self._source is not None:
            self._source.detach(self)
        self._source = source
        self._queue.clear()
        self._offset = None
        if source is not None:
            self._waiting_keyframe = self.kind == "video"
            source.attach(self)
            source.request_keyframe()

    def request_keyframe(self) -> None:
        if self._source is not None:
            self._source.request_keyframe()

    def push(self, frame: EncodedFrame) -> None:
        if self._waiting_keyframe:
            if not frame.keyframe:
                return
            self._waiting_keyframe = False
        if len(self._queue) >= MAX_QUEUED_FRAMES[self.kind]:
            self._stats.frames_dropped += len(self._queue)
            self._queue.clear()
            if self.kind == "video":
                self._waiting_keyframe = True
                self.request_keyframe()
                return
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> av.Packet:
        # The sender calls recv() again only after it sent every packet of the last frame.
        if self._in_flight is not None:
            self._stats.latency.append(time.monotonic() - self._in_flight)
            self._in_flight = None
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        frame = self._queue.popleft()
        if self._offset is None:
            start = 0 if self._last_out is None else self._last_out + SWITCH_STEP[self.kind]
            self._offset = start - frame.timestamp
        out = (frame.timestamp + self._offset) & 0xFFFFFFFF
        self._last_out = out
        self._in_flight = frame.arrival
        self.frames_sent += 1
        self._stats.frames_out += 1
        packet = av.Packet(frame.data)
        packet.pts = out
        packet.time_base = self._time_base
        return packet
