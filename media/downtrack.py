"""A subscriber's outgoing track: frames from one layer of one Publication, as av.Packets.

aiortc's RTCRtpSender re-packetizes an av.Packet without encoding. One DownTrack lives as long
as its transceiver; it is re-bound as publications come and go and switches layers as the
allocator says, always at a keyframe of the layer it switches to (the sender never sees a track
end, the subscriber's decoder never sees a frame it cannot decode).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamTrack

from .frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame
from .publication import Publication
from .source import Source
from .stats import ForwardStats

# A subscriber that falls this far behind starts over at the next keyframe: late video is
# worse than a skip.
MAX_QUEUED_FRAMES = {"video": 30, "audio": 50}
# Frames that waited this long in our queue before the sender's first take are not sent (it
# starts only once DTLS is up, ~0.5 s after the first keyframe on a 150 ms round trip): that
# backlog, paced out at once, overflowed a rural link's queue at every join. Video restarts at
# a fresh keyframe.
STALE_S = 0.25
# Minimum RTP timestamp step across a switch of stream (one video frame / audio packet).
SWITCH_STEP = {"video": VIDEO_CLOCK // 30, "audio": AUDIO_CLOCK // 50}


class DownTrack(MediaStreamTrack):
    def __init__(self, kind: str, stats: ForwardStats) -> None:
        super().__init__()
        self.kind = kind
        self._stats = stats
        self._clock = VIDEO_CLOCK if kind == "video" else AUDIO_CLOCK
        self._time_base = Fraction(1, self._clock)
        self._queue: deque[tuple[int, EncodedFrame, float]] = deque()  # (RTP time, frame, queued)
        self._ready = asyncio.Event()
        self.publication: Publication | None = None
        self._current: Source | None = None  # the stream we forward
        self._pending: Source | None = None  # the stream we switch to at its next keyframe
        self._target_layer = 0
        self._offset: int | None = None
        self._last_out: int | None = None
        self._last_arrival = 0.0
        self._in_flight: float | None = None
        self.frames_sent = 0
        self.paused = False

    # -- what to forward ----------------------------------------------------------------------

    def bind(self, publication: Publication | None) -> None:
        """Forward `publication` from now on (None: go quiet)."""
        if publication is self.publication:
            return
        self.publication = publication
        self._detach_all()
        self._queue.clear()
        if publication is not None:
            self._target_layer = len(publication.layers) - 1  # start low, the allocator raises
            self.refresh()

    def set_layer(self, layer: int | None) -> None:
        """Target layer index (0 = highest); None pauses the video."""
        self.paused = layer is None
        if layer is not None:
            self._target_layer = layer
        self.refresh()

    def refresh(self) -> None:
        """Re-apply the target after the allocator or the publication's layers changed."""
        layers = self.publication.layers if self.publication is not None else []
        if not layers or self.paused:
            self._detach_all()
            return
        target = layers[min(self._target_layer, len(layers) - 1)]
        if target is self._current:
            self._set_pending(None)
        elif target is not self._pending:
            if self._current is not None and self._current not in layers:
                self._current.detach(self)  # a layer that went away
                self._current = None
            self._set_pending(target)

    @property
    def current_layer(self) -> int | None:
        if self.publication is None or self._current is None:
            return None
        layers = self.publication.layers
        return layers.index(self._current) if self._current in layers else None

    def _set_pending(self, source: Source | None) -> None:
        if self._pending is not None and self._pending is not self._current:
            self._pending.detach(self)
        self._pending = source
        if source is not None:
            source.attach(self)
            if self.kind == "audio":
                self._switch()  # every audio packet is a switch point
            else:
                source.request_keyframe()

    def _detach_all(self) -> None:
        for source in (self._current, self._pending):
            if source is not None:
                source.detach(self)
        self._current = self._pending = None

    def _switch(self) -> None:
        if self._current is not None and self._current is not self._pending:
            self._current.detach(self)
        self._current, self._pending = self._pending, None
        self._offset = None  # re-base timestamps on the new stream

    def source_closed(self, source: Source) -> None:
        """A layer went away: fall back to what the publication still has."""
        if source is self._current:
            self._current = None
        if source is self._pending:
            self._pending = None
        self.refresh()

    def request_keyframe(self) -> None:
        source = self._pending or self._current
        if source is not None:
            source.request_keyframe()

    def restart_at_keyframe(self) -> None:
        """Packets of ours were lost on the way out: forward nothing until a keyframe."""
        if self.kind == "video" and self._current is not None:
            self._pending, self._current = self._current, None
            self._pending.request_keyframe()

    # -- frames in ----------------------------------------------------------------------------

    def push(self, frame: EncodedFrame, source: Source) -> None:
        if source is self._pending and source is not self._current:
            if not frame.keyframe:
                return
            self._switch()
        elif source is not self._current:
            return
        if len(self._queue) >= MAX_QUEUED_FRAMES[self.kind]:
            self._stats.frames_dropped += len(self._queue)
            self._queue.clear()
            if self.kind == "video" and not frame.keyframe:
                self.restart_at_keyframe()
                return
        if self._offset is None:
            if self._last_out is None:
                start = 0
            else:
                # Keep the receiver's clock honest: at least one frame, or the real pause.
                gap = int((frame.arrival - self._last_arrival) * self._clock)
                start = self._last_out + max(SWITCH_STEP[self.kind], gap)
            self._offset = start - frame.timestamp
        out = (frame.timestamp + self._offset) & 0xFFFFFFFF
        self._last_out, self._last_arrival = out, frame.arrival
        self._queue.append((out, frame, time.monotonic()))
        self._ready.set()

    # -- packets out (aiortc's sender loop) ---------------------------------------------------

    def _drop_stale(self) -> None:
        now = time.monotonic()
        if self.kind == "audio":
            while self._queue and now - self._queue[0][2] > STALE_S:
                self._queue.popleft()
                self._stats.frames_dropped += 1
            return
        self._stats.frames_dropped += len(self._queue)
        self._queue.clear()
        self.restart_at_keyframe()

    async def recv(self) -> av.Packet:
        # The sender calls recv() again only after it sent every packet of the last frame.
        if self._in_flight is not None:
            self._stats.latency.append(time.monotonic() - self._in_flight)
            self._in_flight = None
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            # Only the backlog from before the sender started: later, a busy event loop is
            # no reason to throw away video and wait a round trip for a keyframe.
            if self.frames_sent or time.monotonic() - self._queue[0][2] <= STALE_S:
                break
            self._drop_stale()
        out, frame, _ = self._queue.popleft()
        self._in_flight = frame.arrival
        self.frames_sent += 1
        self._stats.frames_out += 1
        packet = av.Packet(frame.data)
        packet.pts = out
        packet.time_base = self._time_base
        return packet
