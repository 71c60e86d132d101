"""Frame assembly on the SFU's receive side: packets in, complete frames out.

Replaces aiortc's packet-count jitter buffer for forwarded streams. Policy:
- emit a video frame as soon as its marker packet and every packet before it are here
  (no waiting for the next frame, unlike aiortc's buffer);
- wait for a missing packet at most `max_wait` seconds (NACK gets its chance: at least two
  round trips, measured from NACK to retransmission), then give up: skip ahead, forward
  nothing until the next keyframe and ask for one. A packet lost twice must cost one keyframe
  interval, not seconds of freeze for every subscriber;
- while waiting for a keyframe, jump to the newest complete keyframe already held (as a
  browser's frame buffer does) instead of crawling hole by hole;
- audio packets are frames of their own and go out at once; a late one is dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import red
from .frames import EncodedFrame, is_keyframe

MAX_STORED_PACKETS = 2048  # bounds memory whatever the sender does
NACK_RETRY_S = 0.08  # ask again for a packet still missing after this long (or 1.2 RTT) ...
NACK_MAX_TRIES = 3  # ... at most this many times (aiortc asks once, when the gap appears)
RTT_WAITS = 2.5  # wait for a missing packet at least this many measured round trips


@dataclass(slots=True)
class _Packet:
    timestamp: int
    marker: bool
    data: bytes
    arrival: float
    starts_frame: bool


class SequenceUnwrapper:
    """Turns 16-bit RTP sequence numbers into a monotonic integer line."""

    def __init__(self) -> None:
        self._last: int | None = None

    def unwrap(self, seq: int) -> int:
        if self._last is None:
            self._last = seq
            return seq
        delta = (seq - self._last) & 0xFFFF
        if delta >= 0x8000:
            delta -= 0x10000
        value = self._last + delta
        if delta > 0:
            self._last = value
        return value


class FrameAssembler:
    """Assembles frames of one received stream and hands them to `on_frame`."""

    def __init__(
        self,
        codec: str,
        kind: str,
        on_frame: Callable[[EncodedFrame], None],
        on_keyframe_needed: Callable[[], None],
        max_wait: float = 0.4,
    ) -> None:
        self.codec = codec
        self.kind = kind
        self._on_frame = on_frame
        self._on_keyframe_needed = on_keyframe_needed
        self._max_wait = max_wait
        self._seq = SequenceUnwrapper()
        self._packets: dict[int, _Packet] = {}
        self._next: int | None = None  # first sequence number of the next frame to emit
        self._waiting_keyframe = True
        self._gap_since: float | None = None
        self._highest = -1
        self._nacked: dict[int, tuple[float, int]] = {}  # seq -> (last asked, times)
        self.rtt: float | None = None  # NACK to retransmission, smoothed
        self.frames_out = 0
        self.frames_skipped = 0
        self.frames_recovered = 0  # audio frames rebuilt from redundancy (RED)

    def add(
        self,
        seq16: int,
        timestamp: int,
        marker: bool,
        data: bytes,
        now: float,
        starts_frame: bool = False,
    ) -> None:
        """Add one depayloaded packet; `starts_frame` says the codec marks it a frame start."""
        seq = self._seq.unwrap(seq16)
        if self.kind == "audio":
            self._add_audio(seq, timestamp, data, now)
            return
        if self._next is not None and seq < self._next:
            return  # already emitted or skipped: a late retransmission
        if seq in self._packets:
            return
        asked = self._nacked.pop(seq, None)
        if asked is not None and asked[1] == 1:  # a first NACK's answer: one round trip
            sample = now - asked[0]
            self.rtt = sample if self.rtt is None else 0.8 * self.rtt + 0.2 * sample
        self._packets[seq] = _Packet(timestamp, marker, data, now, starts_frame)
        self._highest = max(self._highest, seq)
        if self._next is None:
            self._find_start(seq)
        if self._next is not None:
            self._drain(now)
        if len(self._packets) > MAX_STORED_PACKETS:
            self._skip(now)

    def due_nacks(self, now: float) -> list[int]:
        """Missing packets to ask for again (16-bit sequence numbers).

        The first request goes out from aiortc when the gap appears; this retries a
        retransmission that was itself lost, until the assembler gives up on the frame.
        """
        if self.kind == "audio" or self._next is None or not self._packets:
            self._nacked.clear()
            return []
        due = []
        for seq in range(self._next, self._highest):
            if seq in self._packets:
                continue
            asked, times = self._nacked.get(seq, (now, 0))
            if times == 0 or (now - asked >= self._retry_after and times < NACK_MAX_TRIES):
                if times:  # times == 0: aiortc's own first NACK just went out
                    due.append(seq & 0xFFFF)
                self._nacked[seq] = (now, times + 1)
        for seq in [s for s in self._nacked if s < self._next]:
            del self._nacked[seq]
        return due

    @property
    def _retry_after(self) -> float:
        return max(NACK_RETRY_S, 1.2 * self.rtt) if self.rtt is not None else NACK_RETRY_S

    @property
    def max_wait(self) -> float:
        """How long a hole may hold frames back before we give up on it."""
        if self.rtt is None:
            return self._max_wait
        return max(self._max_wait, RTT_WAITS * self.rtt)

    def _add_audio(self, seq: int, timestamp: int, data: bytes, now: float) -> None:
        if self._next is not None and seq < self._next:
            return
        if self.codec == "red":
            self._add_red(seq, timestamp, data, now)
            return
        self._next = seq + 1
        self.frames_out += 1
        self._on_frame(EncodedFrame(data, timestamp, True, now))

    def _add_red(self, seq: int, timestamp: int, data: bytes, now: float) -> None:
        """Unwrap RED: the primary, and before it any older frame whose packet was lost."""
        try:
            blocks = red.parse(data)
        except ValueError:
            return
        older = blocks[:-1]
        for back, (frame, offset) in enumerate(older, start=-len(older)):
            if self._next is not None and seq + back >= self._next:
                self.frames_recovered += 1
                self.frames_out += 1
                ts = (timestamp - offset) & 0xFFFFFFFF
                self._on_frame(EncodedFrame(frame, ts, True, now))
        self._next = seq + 1
        self.frames_out += 1
        self._on_frame(EncodedFrame(blocks[-1][0], timestamp, True, now))

    def _find_start(self, seq: int) -> None:
        # The first frame may have begun before we joined: start at a packet the codec marks
        # as a frame start, else after the first marker.
        packet = self._packets[seq]
        prev = self._packets.get(seq - 1)
        if packet.starts_frame and (prev is None or prev.timestamp != packet.timestamp):
            self._next = seq
            self._drop_before(seq)
        elif packet.marker:
            self._next = seq + 1
            self._drop_before(self._next)
        elif prev is not None and prev.timestamp != packet.timestamp:
            self._next = seq
            self._drop_before(seq)

    def _drain(self, now: float) -> None:
        while True:
            frame_end = self._complete_frame_end()
            if frame_end is None:
                break
            self._emit(frame_end)
        holes = self._packets and self._highest - self._next + 1 > len(self._packets)
        if holes:
            if self._gap_since is None:
                self._gap_since = now
            elif now - self._gap_since > self.max_wait:
                self._skip(now)
        else:
            self._gap_since = None
        if self._waiting_keyframe and self._packets and self._next is not None:
            key = self._newest_complete_keyframe()
            if key is not None and key > self._next:
                self._next = key
                self._drop_before(key)
                self._gap_since = None
                self._drain(now)

    def _is_start(self, seq: int) -> bool:
        packet = self._packets[seq]
        prev = self._packets.get(seq - 1)
        return packet.starts_frame or (
            prev is not None and (prev.marker or prev.timestamp != packet.timestamp)
        )

    def _newest_complete_keyframe(self) -> int | None:
        """First sequence number of the newest complete keyframe held, if any."""
        found = None
        for seq in sorted(self._packets):
            if not self._is_start(seq):
                continue
            first = self._packets[seq]
            end, parts = seq, []
            while (p := self._packets.get(end)) is not None and p.timestamp == first.timestamp:
                parts.append(p.data)
                if p.marker:
                    if is_keyframe(self.codec, b"".join(parts)):
                        found = seq
                    break
                end += 1
        return found

    def _complete_frame_end(self) -> int | None:
        assert self._next is not None
        first = self._packets.get(self._next)
        if first is None:
            return None
        seq = self._next
        while True:
            packet = self._packets.get(seq)
            if packet is None or packet.timestamp != first.timestamp:
                # a timestamp change without a marker also closes the frame (lost marker)
                return seq - 1 if packet is not None else None
            if packet.marker:
                return seq
            seq += 1

    def _emit(self, last: int) -> None:
        assert self._next is not None
        parts = [self._packets.pop(s) for s in range(self._next, last + 1)]
        self._next = last + 1
        self._gap_since = None
        data = b"".join(p.data for p in parts)
        keyframe = is_keyframe(self.codec, data)
        if self._waiting_keyframe and not keyframe:
            self.frames_skipped += 1
            self._on_keyframe_needed()  # the owner throttles repeated requests
            return
        self._waiting_keyframe = False
        self.frames_out += 1
        self._on_frame(EncodedFrame(data, parts[0].timestamp, keyframe, parts[0].arrival))

    def _skip(self, now: float) -> None:
        """Give up on the missing packets: resume at the next frame start we hold."""
        self._waiting_keyframe = True
        self._gap_since = None
        self._on_keyframe_needed()
        head = self._next if self._next is not None else -1
        # never the frame we are giving up on
        starts = sorted(s for s in self._packets if s > head and self._is_start(s))
        if starts:
            self._next = starts[0]
            self._drop_before(self._next)
            self._drain(now)
        else:
            self._packets.clear()
            self._next = None

    def _drop_before(self, seq: int) -> None:
        for s in [s for s in self._packets if s < seq]:
            del self._packets[s]
