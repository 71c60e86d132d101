"""Proves a rate before the allocator spends it (one subscriber connection).

The estimate of an app-limited sender is a guess: on a clean path it grows past anything we
ever sent. Spending the guess on a higher layer is a trial with a keyframe and seconds of a
full queue when it fails. Instead the subscriber link asks the prober:
- `proven(now)`: the most the path carried lately without congestion: what we sent, or a
  probe's rate, within PROVEN_WINDOW_S. Congestion forgets it all.
- before an upgrade, `start()` a probe at the upgraded rate: for PROBE_S the link pads what it
  sends up to that rate with copies of recent packets (receivers drop them). NACKs or a
  report showing loss beyond the link's own, a queue, or a falling REMB fail it at once; a
  report after its end that finds the path clean proves the rate: the allocator may upgrade.
A probe that overflowed the queue lost media: the next waits PROBE_BACKOFF_S, doubling; one
caught by its queue alone is retried after PROBE_RETRY_S (a link that fell may come back).
"""

from __future__ import annotations

from collections import deque
from enum import Enum

from . import policy


class Outcome(Enum):
    PROVEN = "proven"
    FAILED = "failed"


class Prober:
    def __init__(self, start_bps: float = policy.START_BPS) -> None:
        self._start_bps = start_bps
        self._proven: deque[tuple[float, float]] = deque()  # (when, bps)
        self.rate: float | None = None  # the running probe's total rate
        self.failed_rate = 0.0  # the last failed probe's
        self._started = 0.0
        self._link_loss = 0.0
        self._media_sent = 0  # media packets sent during the probe
        self._nacked: set[object] = set()  # ... and those a receiver asked for again
        self._covered = False  # a report arrived after the padding stopped
        self._next_ok = 0.0
        self._backoff = policy.PROBE_BACKOFF_S
        self.probes = 0
        self.failures = 0

    # -- what the path has shown --------------------------------------------------------------

    def proven(self, now: float) -> float:
        while self._proven and now - self._proven[0][0] > policy.PROVEN_WINDOW_S:
            self._proven.popleft()
        if not self._proven:
            return self._start_bps
        return max(bps for _, bps in self._proven)

    def on_sent(self, bps: float, congested: bool, now: float) -> None:
        """What we sent lately (smoothed): proof while the path shows no congestion."""
        if congested:
            self._proven.clear()  # the path changed: nothing above what flows is known
        elif self.rate is None and bps > 0:
            self._proven.append((now, bps))

    # -- probing ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.rate is not None

    def may_start(self, now: float) -> bool:
        return self.rate is None and now >= self._next_ok

    def start(self, rate_bps: float, now: float, link_loss: float = 0.0) -> None:
        """Probe at `rate_bps` on a link that loses `link_loss` of its packets anyway."""
        self.rate, self._started, self._covered = rate_bps, now, False
        self._link_loss = link_loss
        self._media_sent = 0
        self._nacked: set[object] = set()
        self.probes += 1

    def on_media_sent(self) -> None:
        self._media_sent += 1

    def on_nack(self, key: object, now: float) -> Outcome | None:
        """A receiver asked for a media packet sent during the probe: NACKs come back a
        one-way delay after a loss, a report up to a second later. More than the link loses
        anyway is the probe overflowing the queue: stop before the picture freezes."""
        if self.rate is None:
            return None
        self._nacked.add(key)
        allowed = max(
            policy.PROBE_NACKS_MIN, (self._link_loss + policy.PROBE_LOSS_MAX) * self._media_sent
        )
        return self._fail(now, overflowed=True) if len(self._nacked) > allowed else None

    def padding_bps(self, media_bps: float, now: float) -> float:
        """What to send on top of the media now to reach the probe's rate."""
        if self.rate is None or now - self._started >= policy.PROBE_S:
            return 0.0
        return max(0.0, self.rate - media_bps)

    def on_report(
        self, loss: float | None, link_loss: float, queue_s: float | None, now: float
    ) -> Outcome | None:
        """A receiver report while probing: `loss` its fraction, `link_loss` the loss the link
        shows anyway (radio), `queue_s` its RTT sample's rise over the path's minimum."""
        if self.rate is None:
            return None
        if loss is not None and loss > link_loss + policy.PROBE_LOSS_MAX:
            return self._fail(now, overflowed=True)
        if queue_s is not None and queue_s > policy.PROBE_QUEUE_S:
            return self._fail(now)
        if now - self._started >= policy.PROBE_S:
            self._covered = True
        return None

    def on_remb(self, bps: float, fell: bool, now: float) -> Outcome | None:
        """A REMB that fell under the probe's rate: the receiver's delay detector saw the
        probe queue up (it reports ~0.85x what reaches it)."""
        if self.rate is not None and fell and bps < self.rate * policy.REMB_FALL:
            return self._fail(now)
        return None

    def tick(self, now: float) -> Outcome | None:
        """Judge a probe whose padding is over: clean once a report covered it."""
        if self.rate is None or now - self._started < policy.PROBE_S:
            return None
        if self._covered:
            self._proven.append((now, self.rate))
            self.rate = None
            self._backoff = policy.PROBE_BACKOFF_S
            return Outcome.PROVEN
        if now - self._started >= policy.PROBE_S + policy.PROBE_JUDGE_S:
            return self._fail(now)  # no report came: nothing proven
        return None

    def _fail(self, now: float, overflowed: bool = False) -> Outcome:
        """A probe caught by its queue (RTT, a falling REMB) cost a bump of delay: try again
        soon, the link may be back. One that overflowed the queue lost media (a freeze):
        back off, doubling."""
        self.failed_rate, self.rate = self.rate or 0.0, None
        self.failures += 1
        if overflowed:
            self._next_ok = now + self._backoff
            self._backoff = min(self._backoff * 2, policy.PROBE_BACKOFF_MAX_S)
        else:
            self._next_ok = now + policy.PROBE_RETRY_S
        return Outcome.FAILED
