"""One subscriber connection's available bandwidth, from what its receiver tells us.

Inputs: REMB (the browser's delay-based estimate), receiver-report loss, RTT (whose rise over
the path's minimum is the queueing-delay trend) and what we actually sent. Output: `target`.
The estimate is the least of three caps, as in GCC:
- REMB, while fresh and while the path shows congestion (loss, a standing queue, or the REMB
  itself falling and falling again): on a clean path a REMB only echoes what we chose to
  send, and following it down would starve a subscriber whose videos we paused;
- a loss-based rate: grows below 2% loss, holds from 2 to 10% (random radio loss must not
  collapse the rate), cuts above 10%. The bands judge the loss smoothed over reports: one
  report of a few dozen packets on a link that loses 3% often shows none (growing on it
  ratchets the rate far past the link) and now and then 10% (cutting on it ratchets the rate
  down for good). A report above LOSS_CUT_AT_ONCE still cuts at once;
- a delay-based rate: backs off when RTT shows a standing queue.
Growing beyond what we send (to try a higher layer) needs a link proven clean over its last
CLEAN_WINDOW_PACKETS packets: a few lucky reports in a row are common on a radio link. Even
then the estimate is only a licence to probe (media/prober.py): the allocator spends what the
path has proven.
"""

from __future__ import annotations

from collections import deque

from . import policy


class BandwidthEstimator:
    def __init__(self, start_bps: float = policy.START_BPS) -> None:
        self._remb: float | None = None
        self._remb_at = -1e9
        self._loss_rate = float(start_bps)
        self._delay_rate = float(policy.MAX_BPS)
        self._last_loss_update: float | None = None
        self._last_cut = -1e9
        self._last_delay_update: float | None = None
        self._min_rtt: float | None = None
        self._rtts: deque[tuple[float, float]] = deque()  # (when, sample)
        self.rtt: float | None = None
        self.loss = 0.0  # the last report's
        self.loss_avg = 0.0  # smoothed over reports: the link's own loss rate
        self._clean_since: float | None = None  # reports since then showed no loss at all
        self.reports = 0  # receiver reports seen
        self._window: deque[tuple[int, float]] = deque()  # (packets, lost) per report
        self._window_packets = 0
        self._window_lost = 0.0
        self._clean_packets = 0  # packets since the last report that showed a loss
        self.sent_bps = 0.0
        self.sent_avg = 0.0  # smoothed over ~a second: a tick may catch a keyframe or a lull
        self._remb_falls = 0  # REMBs since it fell, none of them higher than the one before
        self._remb_fell_at = -1e9

    def on_sent_rate(self, bps: float) -> None:
        """What the pacer actually sent lately (bits/s)."""
        self.sent_bps = bps
        weight = policy.SENT_SMOOTHING if self.sent_avg else 1.0
        self.sent_avg += weight * (bps - self.sent_avg)

    def on_remb(self, bps: float, now: float, probing: bool = False) -> bool:
        """A receiver's REMB; True when it fell (its delay detector saw a queue grow: a
        running probe fails on it). A REMB that keeps falling, under what we send, is
        congestion a report ahead of loss and RTT (a 1 Mbps link falling to 300 kbps: 0.8 s
        sooner); a single fall is not (aiortc's halved on a clean path, then stayed flat).
        `probing`: our padding's queue, not the media's."""
        before = self._fresh_remb(now)
        fell = before is not None and bps < before * policy.REMB_FALL
        if before is None or bps > before:
            self._remb_falls = 0
        elif fell or self._remb_falls:
            self._remb_falls += 1
        below = bps < self.sent_avg * policy.REMB_FALL
        if self._remb_falls >= policy.REMB_FALLS and below and not probing:
            self._remb_fell_at = now
        self._remb, self._remb_at = float(bps), now
        return fell

    def remb_falling(self, now: float) -> bool:
        """The receiver's REMB kept falling lately: its delay detector sees a queue grow."""
        return now - self._remb_fell_at < policy.REMB_FALL_HOLD_S

    def cap(self, bps: float) -> None:
        """The path failed at this rate (a probe): the estimate stays below it for now."""
        self._loss_rate = self._clamp(min(self._loss_rate, bps))

    def on_loss(
        self, fraction: float, now: float, packets: int | None = None, probing: bool = False
    ) -> None:
        """Fraction of packets lost (0..1) since the last receiver report, and how many
        packets that report covers (unknown for a stream's first report). `probing`: our own
        probe's padding may have overflowed the queue: that loss is not the link's (no radio
        loss to protect against) nor the media's (the padding stops and the probe's failure
        caps the estimate); the reports after it judge the link again."""
        self.loss = fraction
        self.reports += 1
        if probing:
            self._clean_packets = 0
            return
        # Loss while a queue stands or the REMB keeps falling, or too much to be chance, is
        # congestion's, not the link's own: counted in the random-loss window it turned loss
        # protection on, and the copies refilled the queue of a link that had just fallen to
        # 300 kbps.
        queue = self.queue_delay
        congestion = (
            fraction > policy.LOSS_CUT_AT_ONCE
            or (queue is not None and queue >= policy.QUEUE_DELAY_HIGH / 2)
            or self.remb_falling(now)
        )
        if congestion:
            self._clean_packets = 0 if fraction > 0 else self._clean_packets
        else:
            self._count(packets or 0, fraction)
        if fraction <= policy.LOSS_CUT_AT_ONCE:  # that one cuts below, at once
            self.loss_avg += policy.LOSS_SMOOTHING * (fraction - self.loss_avg)
        if fraction > 0:
            self._clean_since = None
        elif self._clean_since is None:
            self._clean_since = now
        elif now - self._clean_since >= policy.CLEAN_STREAK_S:
            # Seconds without a single loss: the congestion is over (a link that loses even
            # 1% at random never shows that); forget it quickly.
            self.loss_avg *= 0.5
        last = self._last_loss_update
        self._last_loss_update = now
        # Cut on the smoothed loss, or at once on a report that cannot be bad luck.
        if self.loss_avg > policy.LOSS_HOLD_MAX or fraction > policy.LOSS_CUT_AT_ONCE:
            if now - self._last_cut >= policy.LOSS_CUT_MIN_INTERVAL:
                base = min(self._loss_rate, self.sent_bps or self._loss_rate)
                self._loss_rate = base * (1 - 0.5 * max(fraction, self.loss_avg))
                if fraction > policy.LOSS_CUT_AT_ONCE and self.sent_avg:
                    # A queue overflowing: what got through is what the link carries.
                    self._loss_rate = min(self._loss_rate, self.sent_avg * (1 - fraction))
                self._last_cut = now
        elif self.reports < policy.MIN_REPORTS_TO_GROW or last is None:
            pass  # the smoothed loss means nothing yet: a first lucky report is no clean link
        elif max(fraction, self.loss_avg) < policy.LOSS_INCREASE_MAX:
            queue = self.queue_delay
            clear = fraction == 0 and queue is not None and queue < policy.CLEAR_QUEUE_S
            growth = policy.CLEAR_GROWTH_PER_S if clear else policy.LOSS_GROWTH_PER_S
            grown = self._loss_rate * (1 + growth) ** min(now - last, 1.0)
            # The receiver's own REMB may lead the way up; growth far beyond what we send
            # proves nothing (an app-limited sender must not bank an estimate it never tried).
            grown = max(grown, self._fresh_remb(now) or 0.0)
            # On a LAN a failed trial costs a few frames (fan-out on a busy loopback loses ~2%
            # and must still reach 720p); on a long path it costs a second of frozen picture.
            short = self.rtt is not None and self.rtt < policy.SHORT_PATH_RTT_S
            if self.proven_clean or short:
                ceiling = max(policy.CLEAN_CEILING_BPS, 4 * self.sent_bps)
            else:
                ceiling = max(policy.START_BPS, policy.HOLD_BAND_CEILING * self.sent_bps)
            self._loss_rate = max(self._loss_rate, min(grown, ceiling))
        elif (queue := self.queue_delay) is not None and queue < policy.QUEUE_DELAY_HIGH / 3:
            # Loss in the hold band with no queue in sight: random loss, not congestion. Climb
            # back slowly towards what the link delivers (a cut on a radio link must not stick
            # at the floor); the delay controller stops it where a queue begins.
            grown = self._loss_rate * (1 + policy.LOSS_GROWTH_PER_S) ** min(now - last, 1.0)
            ceiling = max(policy.START_BPS, policy.HOLD_BAND_CEILING * self.sent_bps)
            self._loss_rate = max(self._loss_rate, min(grown, ceiling))
        self._loss_rate = self._clamp(self._loss_rate)

    def _count(self, packets: int, fraction: float) -> None:
        self._clean_packets = self._clean_packets + packets if fraction == 0 else 0
        self._window.append((packets, packets * fraction))
        self._window_packets += packets
        self._window_lost += packets * fraction
        while self._window and self._window_packets - self._window[0][0] >= (
            policy.CLEAN_WINDOW_PACKETS
        ):
            n, lost = self._window.popleft()
            self._window_packets -= n
            self._window_lost -= lost

    @property
    def window_loss(self) -> float | None:
        """Share of the last packets lost (up to CLEAN_WINDOW_PACKETS of them), once there are
        WINDOW_MIN_PACKETS: known seconds before the smoothed loss has caught up after a join."""
        if self._window_packets < policy.WINDOW_MIN_PACKETS:
            return None
        return self._window_lost / self._window_packets

    @property
    def proven_clean(self) -> bool:
        """The last packets lost (almost) none: not a radio link, or its congestion is over."""
        return self._clean_packets >= policy.CLEAN_RUN_PACKETS or (
            self._window_packets >= policy.CLEAN_WINDOW_PACKETS
            and self._window_lost <= policy.CLEAN_WINDOW_LOSS * self._window_packets
        )

    def on_rtt(self, rtt: float, now: float, probing: bool = False) -> None:
        """A round-trip sample. `probing`: our probe's padding may have queued it: the probe
        judges it, the delay controller does not (the padding stops)."""
        if probing:
            return
        # A standing queue raises every sample; one report stuck behind a burst raises one.
        # Judge the least of the last QUEUE_WINDOW_S of samples.
        self._rtts.append((now, rtt))
        while self._rtts and now - self._rtts[0][0] > policy.QUEUE_WINDOW_S:
            self._rtts.popleft()
        rtt = min(r for _, r in self._rtts)
        self.rtt = rtt
        self._min_rtt = rtt if self._min_rtt is None else min(self._min_rtt, rtt)
        last = self._last_delay_update
        self._last_delay_update = now
        if rtt - self._min_rtt > policy.QUEUE_DELAY_HIGH:
            base = self.sent_bps or self.target(now)
            self._delay_rate = self._clamp(min(self._delay_rate, base * policy.QUEUE_DELAY_CUT))
        elif last is not None:
            # Once the queue is gone, grow back fast: the estimate is a licence to probe, the
            # allocator spends only what a probe or the flow has proven.
            gone = rtt - self._min_rtt < policy.CLEAR_QUEUE_S
            growth = policy.QUEUE_CLEAR_GROWTH_PER_S if gone else policy.QUEUE_GROWTH_PER_S
            grown = self._delay_rate * (1 + growth) ** min(now - last, 1.0)
            self._delay_rate = self._clamp(grown)

    @property
    def min_rtt(self) -> float | None:
        """The path's round trip without a queue (the least seen)."""
        return self._min_rtt

    @property
    def queue_delay(self) -> float | None:
        """Seconds the RTT stands above the path's minimum: the queue building somewhere."""
        if self.rtt is None or self._min_rtt is None:
            return None
        return self.rtt - self._min_rtt

    @property
    def congested(self) -> bool:
        """Loss beyond radio noise (smoothed above the hold band, or one report that cannot be
        chance), or a queue standing in the path. A radio link losing 3% at random is not
        congested: its receiver's REMB does not bind, and the camera is not paused."""
        queue = self.queue_delay
        return (
            self.loss_avg > policy.LOSS_HOLD_MAX
            or self.loss > policy.LOSS_CUT_AT_ONCE
            or (queue is not None and queue >= policy.QUEUE_DELAY_HIGH / 2)
        )

    def _fresh_remb(self, now: float) -> float | None:
        if self._remb is None or now - self._remb_at > policy.REMB_STALE_S:
            return None
        return self._remb

    def target(self, now: float) -> float:
        binds = self.congested or self.remb_falling(now)
        remb = self._fresh_remb(now) if binds else None
        caps = [self._loss_rate, self._delay_rate] + ([remb] if remb is not None else [])
        return self._clamp(min(caps))

    @staticmethod
    def _clamp(bps: float) -> float:
        return max(policy.FLOOR_BPS, min(policy.MAX_BPS, bps))
