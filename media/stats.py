"""Counters of what the forwarder did, cheap enough for the per-frame path."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of `values`, None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


@dataclass
class ForwardStats:
    """Per-node forwarding figures. `latency` holds recent seconds from a frame's first
    packet arriving to its last packet handed to the subscriber's socket."""

    frames_in: int = 0
    frames_out: int = 0
    frames_dropped: int = 0
    keyframe_requests: int = 0
    plis_sent: int = 0
    latency: deque[float] = field(default_factory=lambda: deque(maxlen=50_000))

    def snapshot(self) -> dict[str, float | int | None]:
        samples = list(self.latency)
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "frames_dropped": self.frames_dropped,
            "keyframe_requests": self.keyframe_requests,
            "plis_sent": self.plis_sent,
            "latency_ms_p50": _ms(percentile(samples, 50)),
            "latency_ms_p99": _ms(percentile(samples, 99)),
            "latency_samples": len(samples),
        }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
