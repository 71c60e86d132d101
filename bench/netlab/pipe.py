"""One direction of the emulated link as a pure model: no I/O, time is passed in.

arrival -> drop-tail queue -> serializer at the current rate -> random/burst loss -> fixed
one-way delay -> release. Service times chain from the previous packet's finish, not from when
the caller happened to wake, so the rate stays exact even when wake-ups are late.
"""

from __future__ import annotations

import math
import random
from collections import deque

from .packetlog import DELIVERED, DROPPED, LOST, PacketLog
from .spec import DirSpec

MIN_QUEUE_BYTES = 1500  # a queue "sized in ms" at a tiny rate must still hold one packet


def _rate(bps: float | None) -> float:
    return math.inf if bps is None else float(bps)


class Pipe:
    def __init__(
        self, spec: DirSpec, rng: random.Random, code: int = 0, log: PacketLog | None = None
    ) -> None:
        self.code = code  # 0: a->b, 1: b->a (the log's direction column)
        self.log = log
        self.rng = rng
        self.delay = spec.delay_ms / 1000.0
        self.queue_ms = spec.queue_ms
        self.loss = spec.loss
        self.ge = spec.burst
        self.ge_bad = False
        self.rate = _rate(spec.rate_bps)
        self.limit = self._limit()
        self.queue: deque[tuple[float, bytes]] = deque()  # (arrival, packet), waiting
        self.queue_bytes = 0
        self.svc: bytes | None = None  # the packet on the wire
        self.svc_lost = False
        self.svc_bits = 0.0  # its bits still to send as of svc_from
        self.svc_from = 0.0
        self.svc_done = math.inf
        self.line: deque[tuple[float, bytes]] = deque()  # (due, packet): in flight, FIFO
        self.clock = 0.0  # the latest time the serializer was advanced to
        # counters for stats()
        self.offered = self.offered_bytes = self.dropped = self.lost = 0
        self.delivered = self.delivered_bytes = 0
        # How late packets left against their due time: the emulator's own timing error.
        self.late_max = self.late_sum = 0.0
        self.late_1ms = 0

    def _limit(self) -> float:
        if self.queue_ms is None:
            return math.inf
        return max(self.rate * self.queue_ms / 8000.0, MIN_QUEUE_BYTES)

    def _tx_time(self, bits: float) -> float:
        if math.isinf(self.rate):
            return 0.0
        return bits / self.rate if self.rate > 0 else math.inf

    def _lose(self) -> bool:
        """One loss decision per transmitted packet: random loss, then the Gilbert-Elliott chain."""
        r = self.rng.random
        lost = self.loss > 0 and r() < self.loss
        ge = self.ge
        if ge is not None:
            if self.ge_bad:
                self.ge_bad = r() >= ge.p_bg
            else:
                self.ge_bad = r() < ge.p_gb
            p = ge.loss_bad if self.ge_bad else ge.loss_good
            lost = (p > 0 and r() < p) or lost
        return lost

    def _start(self, t_start: float, arrival: float, pkt: bytes) -> None:
        self.svc = pkt
        self.svc_lost = lost = self._lose()
        self.svc_bits = len(pkt) * 8.0
        self.svc_from = t_start
        self.svc_done = t_start + self._tx_time(self.svc_bits)
        if self.log is not None:
            self.log.add(arrival, self.code, len(pkt), LOST if lost else DELIVERED,
                         t_start - arrival)

    def offer(self, now: float, pkt: bytes) -> None:
        """A packet arrives at `now` (seconds since link start, as every time here)."""
        self._advance(now)  # the queue's true occupancy at `now` decides admission
        size = len(pkt)
        self.offered += 1
        self.offered_bytes += size
        if self.svc is None and not self.queue:
            self._start(now, now, pkt)
            self._advance(now)  # unlimited rate: straight onto the delay line
            return
        if self.queue_bytes + size > self.limit:
            self.dropped += 1
            if self.log is not None:
                self.log.add(now, self.code, size, DROPPED, math.nan)
            return
        self.queue.append((now, pkt))
        self.queue_bytes += size

    def _advance(self, now: float) -> None:
        """Finish every transmission that ends by `now`, starting the next from the queue."""
        self.clock = max(self.clock, now)
        while self.svc is not None and self.svc_done <= now:
            done, pkt = self.svc_done, self.svc
            if self.svc_lost:
                self.lost += 1
            else:
                self.line.append((done + self.delay, pkt))
            self.svc = None
            self.svc_done = math.inf
            if self.queue:
                arrival, nxt = self.queue.popleft()
                self.queue_bytes -= len(nxt)
                self._start(max(done, arrival), arrival, nxt)

    def poll(self, now: float) -> list[bytes]:
        """Advance to `now`; return the packets whose one-way delay has elapsed."""
        self._advance(now)
        out: list[bytes] = []
        line = self.line
        while line and line[0][0] <= now:
            due, pkt = line.popleft()
            late = now - due
            self.late_sum += late
            if late > 0.001:
                self.late_1ms += 1
                self.late_max = max(self.late_max, late)
            self.delivered += 1
            self.delivered_bytes += len(pkt)
            out.append(pkt)
        return out

    def set_rate(self, now: float, bps: float | None) -> None:
        """Change the rate at `now`; the packet on the wire keeps the bits it has already sent
        and finishes the rest at the new rate. A change scheduled for a moment the serializer
        has already passed takes effect from where it is: time never runs backwards."""
        now = max(now, self.clock)
        self._advance(now)
        if self.svc is not None:
            if not math.isinf(self.rate):
                self.svc_bits = max(0.0, self.svc_bits - (now - self.svc_from) * self.rate)
            else:
                self.svc_bits = 0.0
            self.svc_from = now
        self.rate = _rate(bps)
        self.limit = self._limit()
        if self.svc is not None:
            self.svc_done = now + self._tx_time(self.svc_bits)

    def next_event(self) -> float:
        """When poll() next has a packet to release. The packet on the wire is released no
        sooner than its delay after it ends; offer() and set_rate() catch the serializer up
        themselves, so nobody needs to wake when a transmission ends."""
        due = self.line[0][0] if self.line else math.inf
        return min(due, self.svc_done + self.delay)

    def stats(self) -> dict[str, float | int | None]:
        backlog_bits = self.queue_bytes * 8
        return {
            "rate_bps": None if math.isinf(self.rate) else self.rate,
            "offered_pkts": self.offered,
            "offered_bytes": self.offered_bytes,
            "delivered_pkts": self.delivered,
            "delivered_bytes": self.delivered_bytes,
            "dropped_pkts": self.dropped,
            "lost_pkts": self.lost,
            "queue_pkts": len(self.queue),
            "queue_bytes": self.queue_bytes,
            "queue_delay_ms": (round(backlog_bits / self.rate * 1000, 1)
                               if 0 < self.rate < math.inf else 0.0),
            "in_flight_pkts": len(self.line),
            "late_mean_ms": round(self.late_sum / self.delivered * 1000, 3) if self.delivered
            else 0.0,
            "late_max_ms": round(self.late_max * 1000, 3),
            "late_over_1ms_pkts": self.late_1ms,
        }
