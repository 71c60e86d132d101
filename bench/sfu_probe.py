"""The Tongke server as `tongke serve` runs it, with event probes for the link benchmark.

Wraps (never changes) the forwarding path's decisions and writes them with their times when
the server stops, so a benchmark can say *why* a classroom froze: which part asked for a
keyframe, when a subscriber's track restarted, when the ladder skipped, what the NACK budget
refused. Probes only count and time; every wrapped call goes on exactly as before.

    python -m bench.sfu_probe --events FILE -- --config CFG serve
"""

from __future__ import annotations

import argparse
import atexit
import json
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from media import downtrack, estimator, ladder, pacer, source

EVENTS: list[list[Any]] = []  # [mono, kind, detail]


def _note(kind: str, detail: Any = None) -> None:
    EVENTS.append([round(time.monotonic(), 4), kind, detail])


def _wrap(cls: type, name: str, before: Callable[..., None]) -> None:
    original = getattr(cls, name)

    def wrapped(self, *args, **kwargs):  # noqa: ANN001, ANN202
        before(self, *args, **kwargs)
        return original(self, *args, **kwargs)

    setattr(cls, name, wrapped)


def install() -> None:
    dt = downtrack.DownTrack

    def restart(self: downtrack.DownTrack) -> None:
        if self.kind == "video" and self._current is not None:
            _note("downtrack_restart", self._current.name)

    def push(self: downtrack.DownTrack, frame, src) -> None:  # noqa: ANN001
        if self.kind != "video":
            return
        if src is self._pending and src is not self._current and frame.keyframe:
            _note("downtrack_switch", src.name)
        elif src is self._current and len(self._queue) >= downtrack.MAX_QUEUED_FRAMES["video"]:
            _note("downtrack_overflow", src.name)

    def subscriber_pli(self: downtrack.DownTrack) -> None:
        if self.kind == "video":
            _note("subscriber_keyframe_request", None)

    _wrap(dt, "restart_at_keyframe", restart)
    _wrap(dt, "push", push)
    _wrap(dt, "request_keyframe", subscriber_pli)

    def source_kf(self: source.Source) -> None:
        if self.kind == "video":
            _note("source_keyframe_request", self.name)

    def source_push(self: source.Source, frame) -> None:  # noqa: ANN001
        if self.kind != "video":
            return
        if frame.keyframe:
            _note("source_keyframe", [self.name, len(frame.data)])
        _note("source_frame", self.name)

    _wrap(source.Source, "request_keyframe", source_kf)
    _wrap(source.Source, "push", source_push)

    def ladder_push(self: ladder.Ladder, frame, src) -> None:  # noqa: ANN001
        if self.active and self._pending >= ladder.MAX_PENDING and not self._waiting_keyframe:
            _note("ladder_behind", self._pending)

    _wrap(ladder.Ladder, "push", ladder_push)

    def paced_drop(self: pacer.Pacer, now: float) -> None:
        if self._video and now - self._video[0][0] > pacer.policy.PACER_MAX_QUEUE_S:
            _note("pacer_drop", round(now - self._video[0][0], 3))

    _wrap(pacer.Pacer, "_drop_stale", paced_drop)

    est = estimator.BandwidthEstimator

    def remb(
        self: estimator.BandwidthEstimator, bps: float, now: float, probing: bool = False
    ) -> None:
        _note("remb", round(bps))

    def loss(
        self: estimator.BandwidthEstimator,
        fraction: float,
        now: float,
        packets: int | None = None,
        probing: bool = False,
    ) -> None:
        _note("rr_loss", [round(fraction, 4), packets, probing])

    def rtt(
        self: estimator.BandwidthEstimator, value: float, now: float, probing: bool = False
    ) -> None:
        _note("rtt", [round(value, 4), round(self.target(now)), round(self.sent_bps)])

    _wrap(est, "on_remb", remb)
    _wrap(est, "on_loss", loss)
    _wrap(est, "on_rtt", rtt)

    allow = pacer.NackBudget.allow

    def nack(self: pacer.NackBudget, key, now: float | None = None) -> bool:  # noqa: ANN001
        ok = allow(self, key, now)
        _note("nack", [key[1] if isinstance(key, tuple) else key, ok])
        return ok

    pacer.NackBudget.allow = nack  # type: ignore[method-assign]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.sfu_probe")
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("serve_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    install()

    def dump() -> None:
        args.events.write_text(json.dumps(EVENTS))

    atexit.register(dump)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from server.cli import main as tongke

    serve_args = [a for a in args.serve_args if a != "--"]
    sys.exit(tongke(serve_args))


if __name__ == "__main__":
    main()
