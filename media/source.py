"""A published track as the SFU sees it: frames in, fanned out to DownTracks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from .frames import EncodedFrame
from .stats import ForwardStats


class Consumer(Protocol):
    """What a Source feeds: a subscriber's DownTrack, or the server-side ladder."""

    def push(self, frame: EncodedFrame, source: Source) -> None: ...

    def source_closed(self, source: Source) -> None: ...


# One PLI upstream per this many seconds, however many subscribers ask: a burst of joiners
# or lossy classrooms must not make the teacher's encoder emit keyframe after keyframe.
PLI_MIN_INTERVAL = 0.5
BITRATE_WINDOW_S = 1.0


class Source:
    def __init__(
        self,
        source_id: str,
        participant_id: str,
        name: str,
        kind: str,
        send_pli: Callable[[], Awaitable[None]],
        stats: ForwardStats,
    ) -> None:
        self.id = source_id
        self.participant_id = participant_id
        self.name = name  # camera | mic | screen
        self.kind = kind  # audio | video
        self.mime_type: str | None = None
        self._send_pli = send_pli
        self.stats = stats
        self._downtracks: set[Consumer] = set()
        self._last_pli = -PLI_MIN_INTERVAL
        self._pli_task: asyncio.Task[None] | None = None
        self._pli_pending = False
        self.keyframes = 0
        self.bitrate_bps = 0.0  # measured over the last BITRATE_WINDOW_S
        self._window_start = time.monotonic()
        self._window_bytes = 0

    def push(self, frame: EncodedFrame) -> None:
        self.stats.frames_in += 1
        if frame.keyframe and self.kind == "video":
            self.keyframes += 1
            self._pli_pending = False
        self._window_bytes += len(frame.data)
        if frame.arrival - self._window_start >= BITRATE_WINDOW_S:
            self.bitrate_bps = self._window_bytes * 8 / (frame.arrival - self._window_start)
            self._window_start, self._window_bytes = frame.arrival, 0
        for downtrack in list(self._downtracks):
            downtrack.push(frame, self)

    def attach(self, consumer: Consumer) -> None:
        self._downtracks.add(consumer)

    def detach(self, consumer: Consumer) -> None:
        self._downtracks.discard(consumer)

    @property
    def subscriber_count(self) -> int:
        return len(self._downtracks)

    def request_keyframe(self) -> None:
        """Coalesce keyframe requests into at most one PLI per PLI_MIN_INTERVAL."""
        if self.kind != "video":
            return
        self.stats.keyframe_requests += 1
        now = time.monotonic()
        if now - self._last_pli < PLI_MIN_INTERVAL:
            self._pli_pending = True
            return
        self._last_pli = now
        self._pli_pending = False
        if self._pli_task is None or self._pli_task.done():
            self._pli_task = asyncio.ensure_future(self._pli_then_retry())

    async def _pli_then_retry(self) -> None:
        await self._send_pli()
        self.stats.plis_sent += 1
        # A request that came while throttled is served when the interval ends, unless
        # a keyframe has arrived meanwhile.
        await asyncio.sleep(PLI_MIN_INTERVAL)
        if self._pli_pending:
            self._pli_pending = False
            self._last_pli = time.monotonic()
            await self._send_pli()
            self.stats.plis_sent += 1

    def close(self) -> None:
        for consumer in list(self._downtracks):
            consumer.source_closed(self)
        self._downtracks.clear()
        if self._pli_task is not None:
            self._pli_task.cancel()
