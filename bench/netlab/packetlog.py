"""The per-packet log: compact columns while running, CSV/JSONL on demand, and summaries."""

from __future__ import annotations

import csv
import json
import math
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from .spec import DIRECTIONS, Direction

DELIVERED, DROPPED, LOST = 0, 1, 2
STATUS = ("delivered", "dropped", "lost")  # dropped: queue overflow; lost: random/burst loss
DIR_CODE: dict[str, int] = {"ab": 0, "ba": 1}


@dataclass
class PacketLog:
    """Columns, one entry per packet offered to the link (t: arrival, seconds from link start).

    Entries are appended when a packet's fate is known (drops at arrival, the rest when they
    start transmission), so they are not in time order; rows() sorts them.
    """

    t: array = field(default_factory=lambda: array("d"))
    dir: array = field(default_factory=lambda: array("b"))
    size: array = field(default_factory=lambda: array("I"))
    status: array = field(default_factory=lambda: array("b"))
    qdelay: array = field(default_factory=lambda: array("d"))  # seconds waiting; NaN if dropped
    # Rate changes as (t, direction, bps or None for unlimited), including the initial rates.
    rates: list[tuple[float, str, float | None]] = field(default_factory=list)
    duration: float = 0.0

    def add(self, t: float, d: int, size: int, status: int, qdelay: float) -> None:
        self.t.append(t)
        self.dir.append(d)
        self.size.append(size)
        self.status.append(status)
        self.qdelay.append(qdelay)

    def __len__(self) -> int:
        return len(self.t)

    # -- persistence: the emulator process hands its log to the Link through a file --------

    def dump(self, f: BinaryIO) -> None:
        meta = {"n": len(self), "rates": self.rates, "duration": self.duration}
        f.write(json.dumps(meta).encode() + b"\n")
        for col in (self.t, self.dir, self.size, self.status, self.qdelay):
            col.tofile(f)

    @classmethod
    def load(cls, path: str | Path) -> PacketLog:
        log = cls()
        with open(path, "rb") as f:
            meta = json.loads(f.readline())
            for col in (log.t, log.dir, log.size, log.status, log.qdelay):
                col.fromfile(f, meta["n"])
        log.rates = [(t, d, r) for t, d, r in meta["rates"]]
        log.duration = meta["duration"]
        return log

    # -- export ---------------------------------------------------------------------------

    def rows(self) -> Iterator[dict[str, Any]]:
        for i in sorted(range(len(self)), key=self.t.__getitem__):
            q = self.qdelay[i]
            yield {
                "t": round(self.t[i], 6),
                "dir": DIRECTIONS[self.dir[i]],
                "size": self.size[i],
                "status": STATUS[self.status[i]],
                "qdelay_ms": None if math.isnan(q) else round(q * 1000, 3),
            }

    def to_csv(self, path: str | Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["t", "dir", "size", "status", "qdelay_ms"])
            w.writeheader()
            for row in self.rows():
                w.writerow({k: "" if v is None else v for k, v in row.items()})

    def to_jsonl(self, path: str | Path) -> None:
        with open(path, "w") as f:
            for row in self.rows():
                f.write(json.dumps(row) + "\n")

    # -- summaries ------------------------------------------------------------------------

    def capacity_bits(self, direction: Direction, start: float, end: float) -> float:
        """Bits the link could carry in [start, end): the rate integrated over time."""
        changes = [(t, r) for t, d, r in self.rates if d == direction]
        changes.sort(key=lambda c: c[0])
        total = 0.0
        for i, (t, r) in enumerate(changes):
            t_next = changes[i + 1][0] if i + 1 < len(changes) else math.inf
            lo, hi = max(t, start), min(t_next, end)
            if hi > lo:
                total += (math.inf if r is None else r) * (hi - lo)
        return total

    def summary(
        self, direction: Direction, start: float = 0.0, end: float | None = None
    ) -> dict[str, Any]:
        """Offered load against capacity, outcomes and queue delay for arrivals in a window."""
        import numpy as np  # here, so the emulator process starts without it

        end = self.duration if end is None else end
        span = max(end - start, 1e-9)
        t = np.frombuffer(self.t, dtype=np.float64)
        d = np.frombuffer(self.dir, dtype=np.int8)
        sel = (d == DIR_CODE[direction]) & (t >= start) & (t < end)
        size = np.frombuffer(self.size, dtype=np.uint32)[sel].astype(np.int64)
        status = np.frombuffer(self.status, dtype=np.int8)[sel]
        q = np.frombuffer(self.qdelay, dtype=np.float64)[sel]
        q = q[status != DROPPED] * 1000
        cap = self.capacity_bits(direction, start, end)
        offered = int(size.sum())
        delivered = int(size[status == DELIVERED].sum())
        n_lost = int((status == LOST).sum())
        n_sent = int((status != DROPPED).sum())

        def pct(p: float) -> float | None:
            return round(float(np.percentile(q, p)), 2) if len(q) else None

        return {
            "direction": direction,
            "window_s": [round(start, 3), round(end, 3)],
            "offered_pkts": int(sel.sum()),
            "offered_bytes": offered,
            "offered_bps": round(offered * 8 / span),
            "capacity_bps": None if math.isinf(cap) else round(cap / span),
            "offered_vs_capacity": None if math.isinf(cap) or cap == 0 else
            round(offered * 8 / cap, 3),
            "delivered_pkts": int((status == DELIVERED).sum()),
            "delivered_bps": round(delivered * 8 / span),
            "dropped_pkts": int((status == DROPPED).sum()),
            "lost_pkts": n_lost,
            "loss_rate": round(n_lost / n_sent, 4) if n_sent else None,
            "qdelay_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99),
                          "max": round(float(q.max()), 2) if len(q) else None},
        }

    def timeline(self, direction: Direction, bin_s: float = 1.0) -> list[dict[str, Any]]:
        """summary() per time bin: how offered load and queue delay follow the capacity."""
        keep = ("offered_bps", "capacity_bps", "delivered_bps", "dropped_pkts", "lost_pkts")
        out = []
        n_bins = max(1, math.ceil(self.duration / bin_s))
        for i in range(n_bins):
            s = self.summary(direction, i * bin_s, min((i + 1) * bin_s, self.duration))
            out.append({"t": round(i * bin_s, 3), **{k: s[k] for k in keep},
                        "qdelay_p95_ms": s["qdelay_ms"]["p95"]})
        return out

    def summaries(self, start: float = 0.0, end: float | None = None) -> dict[str, Any]:
        return {d: self.summary(d, start, end) for d in DIRECTIONS}
