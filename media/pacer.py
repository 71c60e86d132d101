"""Paces one subscriber connection's RTP: no keyframe burst overflows a small rural queue.

Packets leave at PACING_FACTOR x the estimate. Audio jumps the queue; retransmissions and loss
protection's copies (the RTX streams) wait behind the originals of a burst. While the queue is empty
and the budget allows, a packet goes straight out with no task switch (the common case on a
good link). Video that waited longer than PACER_MAX_QUEUE_S is dropped, and the owner is told
which stream lost packets so that stream restarts at a keyframe.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

from . import policy

MAX_BURST_S = 0.01  # credit a quiet sender may bank, in seconds of rate


def rtp_ssrc(data: bytes) -> int:
    return int.from_bytes(data[8:12], "big")


def rtp_seq(data: bytes) -> int:
    return int.from_bytes(data[2:4], "big")


def is_rtcp(data: bytes) -> bool:
    return len(data) > 1 and 192 <= data[1] <= 223


class Pacer:
    def __init__(
        self,
        on_video_dropped: Callable[[int], None],
        rate_bps: float = policy.START_BPS * policy.PACING_FACTOR,
    ) -> None:
        self._sink: Callable[[bytes], Awaitable[None]] | None = None
        self._on_video_dropped = on_video_dropped
        self.rate_bps = rate_bps
        self.audio_ssrcs: set[int] = set()
        self.rtx_ssrcs: set[int] = set()
        self._audio: deque[bytes] = deque()
        self._video: deque[tuple[float, bytes]] = deque()
        self._rtx: deque[tuple[float, bytes]] = deque()
        self._next_send = 0.0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent_bytes = 0
        self.dropped_packets = 0
        # told of every RTP packet as it leaves (the NACK budget's ages, loss protection)
        self.on_sent: Callable[[bytes, float], None] | None = None

    def attach(self, sink: Callable[[bytes], Awaitable[None]]) -> None:
        """Where paced packets go: the transport's own send."""
        self._sink = sink

    async def _send(self, data: bytes) -> None:
        if self._sink is not None:
            await self._sink(data)

    def set_rate(self, bps: float) -> None:
        self.rate_bps = max(bps, 1.0)

    @property
    def queue_delay(self) -> float:
        return time.monotonic() - self._video[0][0] if self._video else 0.0

    @property
    def queued_bytes(self) -> int:
        return (
            sum(len(p) for p in self._audio)
            + sum(len(p) for _, p in self._video)
            + sum(len(p) for _, p in self._rtx)
        )

    async def send(self, data: bytes) -> None:
        """Stands in for the transport's send: RTCP passes, RTP is paced.

        Per packet on the hot path: the common case is one clock read and one await.
        """
        sink = self._sink
        if sink is None:
            return
        if is_rtcp(data):
            await sink(data)
            return
        now = time.monotonic()
        if now >= self._next_send and not self._audio and not self._video and not self._rtx:
            self._spend(len(data), now)
            if self.on_sent is not None:
                self.on_sent(data, now)
            await sink(data)
            return
        if self._closed:
            return
        ssrc = rtp_ssrc(data)
        if ssrc in self.audio_ssrcs:
            self._audio.append(data)
        elif ssrc in self.rtx_ssrcs:
            self._rtx.append((now, data))
        else:
            self._video.append((now, data))
        self._wakeup.set()
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    def _spend(self, size: int, now: float) -> None:
        self._next_send = max(self._next_send, now - MAX_BURST_S) + size * 8 / self.rate_bps
        self.sent_bytes += size

    async def _run(self) -> None:
        while not self._closed:
            if not self._audio and not self._video and not self._rtx:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            now = time.monotonic()
            if now < self._next_send:
                await asyncio.sleep(self._next_send - now)
                continue
            self._drop_stale(now)
            if self._audio:
                data = self._audio.popleft()
            elif self._video:
                data = self._video.popleft()[1]
            elif self._rtx:
                data = self._rtx.popleft()[1]
            else:
                continue
            self._spend(len(data), now)
            if self.on_sent is not None:
                self.on_sent(data, now)
            try:
                await self._send(data)
            except ConnectionError:
                pass

    def _drop_stale(self, now: float) -> None:
        dropped: set[int] = set()
        while self._video and now - self._video[0][0] > policy.PACER_MAX_QUEUE_S:
            dropped.add(rtp_ssrc(self._video.popleft()[1]))
            self.dropped_packets += 1
        for ssrc in dropped:
            self._on_video_dropped(ssrc)
        while self._rtx and now - self._rtx[0][0] > policy.PACER_MAX_QUEUE_S:
            self._rtx.popleft()  # a late copy or resend: the receiver has moved on

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()


class NackBudget:
    """Decides whether to answer a NACK (no retransmission storms):
    - each packet at most NACK_MAX_RESENDS times, and not again within one RTT of the last
      resend (the receiver's retry crossed our retransmission on the way);
    - no packet older than NACK_MAX_AGE_S plus an RTT: the receiver has given up on it;
    - retransmissions within NACK_BUDGET_SHARE of the estimate, with a bank of a quarter
      second, but never less than NACK_MIN_BANK_PACKETS (at 200 kbps a quarter second of a
      15% share is less than one packet: the bank must still let single losses through).
    """

    ASSUMED_PACKET_BYTES = 1200

    def __init__(self) -> None:
        self._resends: dict[Hashable, tuple[int, float]] = {}  # key -> (times, last resend)
        self._sent: dict[Hashable, tuple[float, int]] = {}  # key -> (first sent, bytes)
        self._tokens = 0.0
        self._last: float | None = None
        self.rate_bps = policy.START_BPS * policy.NACK_BUDGET_SHARE
        self.rtt = 0.0
        self.refused = 0
        self.granted = 0

    def set_estimate(self, bps: float, rtt: float | None = None) -> None:
        self.rate_bps = bps * policy.NACK_BUDGET_SHARE
        if rtt is not None:
            self.rtt = rtt

    def sent(self, key: Hashable, size: int, now: float) -> None:
        """A media packet (key: its SSRC and sequence number) went out for the first time."""
        if len(self._sent) > 4096:
            self._sent.clear()
        self._sent.setdefault(key, (now, size))

    def allow(self, key: Hashable, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        sent_at, size = self._sent.get(key, (None, self.ASSUMED_PACKET_BYTES))
        bank = max(self.rate_bps / 32, policy.NACK_MIN_BANK_PACKETS * self.ASSUMED_PACKET_BYTES)
        earned = bank if self._last is None else (now - self._last) * self.rate_bps / 8
        self._tokens = min(self._tokens + earned, bank)
        self._last = now
        times, last = self._resends.get(key, (0, -1e9))
        if (
            times >= policy.NACK_MAX_RESENDS
            or now - last < self.rtt
            or (sent_at is not None and now - sent_at > policy.NACK_MAX_AGE_S + self.rtt)
            or self._tokens < size
        ):
            self.refused += 1
            return False
        if len(self._resends) > 4096:
            self._resends.clear()
        self._resends[key] = (times + 1, now)
        self._tokens -= size
        self.granted += 1
        return True
