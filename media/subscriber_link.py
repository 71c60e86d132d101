"""One subscriber connection's delivery: feedback → estimate → allocation → layers, with the
pacer and the NACK budget on the way out. The data flows one way: the session adds senders,
the link reads their feedback and steers their DownTracks.

With `adaptive=False` it is stock aiortc forwarding (the benchmarks' baseline): top layer,
no pacing, every NACK answered.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCRtpSender, RTCRtpTransceiver

from . import policy, rtc_internals
from .allocator import Allocator, VideoDemand
from .downtrack import DownTrack
from .estimator import BandwidthEstimator
from .pacer import NackBudget, Pacer, rtp_seq, rtp_ssrc
from .prober import Outcome, Prober

TICK_S = 0.25


@dataclass(eq=False)
class _Track:
    transceiver: RTCRtpTransceiver
    downtrack: DownTrack
    describe: Callable[[], tuple[str, bool]]  # (publisher's role, called on)

    @property
    def sender(self) -> RTCRtpSender:
        return self.transceiver.sender

    @property
    def red(self) -> bool:
        codec = rtc_internals.negotiated_codec(self.transceiver)
        return codec is not None and codec.mimeType.lower() == "audio/red"


class SubscriberLink:
    def __init__(
        self,
        adaptive: bool = True,
        viewer_role: str = "classroom",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.adaptive = adaptive
        self.viewer_role = viewer_role
        self._clock = clock
        self.estimator = BandwidthEstimator()
        self.allocator = Allocator()
        self.pacer = Pacer(self._on_video_dropped)
        self.nack = NackBudget()
        self.prober = Prober()
        self._probe_failed_at = -1e9
        # Video sent lately, numbered, for padding: (number, sender, seq)
        self._recent: deque[tuple[int, RTCRtpSender, int]] = deque(maxlen=64)
        self._video_sent = 0  # video packets sent so far (numbers the above)
        self._copied = 0  # the newest number the padding copied
        self._pad_next = 0
        self._padding: list[asyncio.TimerHandle] = []
        self._tracks: dict[str, _Track] = {}  # by mid
        self._by_ssrc: dict[int, DownTrack] = {}
        self._video_senders: dict[int, RTCRtpSender] = {}  # media SSRC -> sender
        # No copies before the reports show random loss on a long round trip: copies from the
        # first packet cost a LAN its share and brought an extra keyframe round (tests).
        self.lossy = False
        self.protecting = False
        self._protect_bps = 0.0  # what the allocator paid for the copies
        self._video_bps = 0.0  # video committed at the last tick, copies not counted
        self._committed_bps = 0.0  # audio + video (+ copies) committed at the last tick
        self._protect_tokens = 0.0  # bytes
        self._protect_at = clock()
        self._closed = False
        self._resends: set[asyncio.Task[None]] = set()
        self.pacer.on_sent = self._on_rtp_sent
        self._last_sent = (clock(), 0)
        self._last_health = 0.0

    def add(
        self,
        mid: str,
        transceiver: RTCRtpTransceiver,
        downtrack: DownTrack,
        describe: Callable[[], tuple[str, bool]],
    ) -> None:
        """Start steering one sending transceiver; describe() tells who publishes what it
        carries now: (their role, whether they are called on)."""
        self._tracks[mid] = _Track(transceiver, downtrack, describe)
        sender = transceiver.sender
        ssrc, rtx = rtc_internals.sender_ssrc(sender)
        self._by_ssrc[ssrc] = self._by_ssrc[rtx] = downtrack
        if downtrack.kind == "audio":
            self.pacer.audio_ssrcs.add(ssrc)
        else:
            self._video_senders[ssrc] = sender
            self.pacer.rtx_ssrcs.add(rtx)
        kind = downtrack.kind

        def allow(seq: int, ssrc: int = ssrc) -> bool:
            if not self.adaptive:
                return True
            if self.prober.running and kind == "video":
                self._probe_over(self.prober.on_nack((ssrc, seq), self._clock()))
            return self.nack.allow((ssrc, seq))

        rtc_internals.tap_sender(sender, lambda fb: self._on_feedback(fb, kind), allow)

    def after_negotiation(self) -> None:
        """Route the connection through the pacer (BUNDLE settles the transport here)."""
        if not self.adaptive:
            return
        for track in self._tracks.values():
            self.pacer.attach(rtc_internals.route_through(track.sender, self.pacer.send))

    def _on_feedback(self, fb: rtc_internals.Feedback, kind: str) -> None:
        now = self._clock()
        # Around a probe, loss, queue and a falling REMB may be the padding's: they judge the
        # probe, not the media's rate.
        probing = self.prober.running or now - self._probe_failed_at < policy.PROBE_SETTLE_S
        fell = fb.remb_bps is not None and self.estimator.on_remb(fb.remb_bps, now, probing)
        # Every stream's report counts: with its videos paused a subscriber reports on audio only.
        if fb.loss is not None:
            self.estimator.on_loss(fb.loss, now, fb.packets, probing)
        if fb.rtt is not None:
            self.estimator.on_rtt(fb.rtt, now, probing)
        if not self.prober.running:
            return
        if fb.remb_bps is not None:
            self._probe_over(self.prober.on_remb(fb.remb_bps, fell, now))
        elif fb.loss is not None:
            floor = self.estimator.min_rtt
            queue = fb.rtt - floor if fb.rtt is not None and floor is not None else None
            link_loss = self.estimator.window_loss or self.estimator.loss_avg
            self._probe_over(self.prober.on_report(fb.loss, link_loss, queue, now))

    def _on_rtp_sent(self, data: bytes, now: float) -> None:
        ssrc = rtp_ssrc(data)
        sender = self._video_senders.get(ssrc)
        if sender is None:
            return  # audio (RED protects it), or a copy already
        seq = rtp_seq(data)
        self.nack.sent((ssrc, seq), len(data), now)
        self._video_sent += 1
        self._recent.append((self._video_sent, sender, seq))
        if self.prober.running:
            self.prober.on_media_sent()
        if self.protecting and self._protect_spend(len(data), now):
            asyncio.get_running_loop().call_later(policy.PROTECT_DELAY_S, self._resend, sender, seq)

    def _protect_spend(self, size: int, now: float) -> bool:
        """Copies stay within what the allocator paid for them: a burst (a slide change, a
        keyframe) goes out once, with NACK behind it, rather than twice into a full queue."""
        rate = self._protect_bps / 8 * policy.PROTECT_RATE_SLACK
        elapsed = now - self._protect_at
        self._protect_at = now
        self._protect_tokens = min(
            self._protect_tokens + elapsed * rate, rate * policy.PROTECT_BANK_S
        )
        if self._protect_tokens < size:
            return False
        self._protect_tokens -= size
        return True

    def _resend(self, sender: RTCRtpSender, seq: int) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self._resend_quietly(sender, seq))
        self._resends.add(task)
        task.add_done_callback(self._resends.discard)

    @staticmethod
    async def _resend_quietly(sender: RTCRtpSender, seq: int) -> None:
        try:
            await rtc_internals.resend(sender, seq)
        except ConnectionError:
            pass  # the connection closed under us

    # -- probing ------------------------------------------------------------------------------

    def _long_path(self) -> bool:
        """Probing pays where a failed upgrade costs seconds: not on a LAN (see policy)."""
        rtt = self.estimator.rtt
        return rtt is None or rtt >= policy.SHORT_PATH_RTT_S

    def _probe(self, target: float, audio: float, videos: list[VideoDemand], now: float) -> None:
        """Start a probe when the estimate allows the next upgrade but the path has not shown
        that rate yet."""
        if self.prober.running or self._congested(now):
            return
        step = self.allocator.next_step_bps(audio, videos)
        if step is None:
            return
        want = step * policy.UPGRADE_HEADROOM
        if target >= want > self.prober.proven(now) and self.prober.may_start(now):
            self._copied = self._video_sent  # copies from the probe's start on
            self.prober.start(want, now, self.estimator.window_loss or self.estimator.loss_avg)

    def _probe_over(self, outcome: Outcome | None) -> None:
        if outcome is None:
            return
        for handle in self._padding:
            handle.cancel()
        self._padding.clear()
        if outcome is Outcome.FAILED:
            self._probe_failed_at = self._clock()
            # The path does not carry the step: the estimate comes back under it (never
            # under what flows now: a failed probe is no reason to come down).
            self.estimator.cap(
                max(self.prober.failed_rate * policy.PROBE_FAILED_CAP, self._committed_bps)
            )

    def _pad(self, bps: float) -> None:
        """Spread this tick's padding: copies of recent video packets (duplicates to the
        receiver, real load to the path)."""
        if bps <= 0 or not self._recent:
            return
        count = min(int(bps * TICK_S / 8 / NackBudget.ASSUMED_PACKET_BYTES), 64)
        loop = asyncio.get_running_loop()
        self._padding = [h for h in self._padding if h.when() > loop.time()]  # still to come
        for i in range(count):
            self._padding.append(loop.call_later(i * TICK_S / count, self._pad_one))

    def _pad_one(self) -> None:
        if not self.prober.running or not self._recent:
            return
        # Every media packet sent during the probe gets its copy first: a packet the probe's
        # queue overflow drops is then rarely missed (drop-tail loses runs, the copy comes
        # later). What is left pads with older packets.
        behind = min(self._video_sent - self._copied, len(self._recent))  # not copied yet
        if behind > 0:
            number, sender, seq = self._recent[-behind]
            self._copied = number
        else:
            self._pad_next = (self._pad_next + 1) % len(self._recent)
            _, sender, seq = self._recent[-1 - self._pad_next]
        self._resend(sender, seq)

    def _congested(self, now: float) -> bool:
        return self.estimator.congested or self.estimator.remb_falling(now)

    def _on_video_dropped(self, ssrc: int) -> None:
        downtrack = self._by_ssrc.get(ssrc)
        if downtrack is not None:
            downtrack.restart_at_keyframe()

    # -- the loop -----------------------------------------------------------------------------

    async def run(self, on_health: Callable[[dict[str, Any]], None]) -> None:
        try:
            while True:
                await asyncio.sleep(TICK_S)
                now = self._clock()
                self.tick(now)
                if now - self._last_health >= policy.HEALTH_EVERY_S:
                    self._last_health = now
                    on_health(self.health())
        finally:
            self.pacer.close()

    def tick(self, now: float) -> None:
        last_t, last_bytes = self._last_sent
        sent = self._sent_bytes()
        if now > last_t:
            self.estimator.on_sent_rate((sent - last_bytes) * 8 / (now - last_t))
        self._last_sent = (now, sent)
        target = self.estimator.target(now)
        proven: float | None = None  # what upgrades may spend (None: the estimate)
        long_path = self.adaptive and self._long_path()
        if long_path:
            self.prober.on_sent(self.estimator.sent_avg, self._congested(now), now)
            self._probe_over(self.prober.tick(now))
            proven = self.prober.proven(now)
        nack_share_of = target if proven is None else min(target, max(proven, self._committed_bps))
        self.nack.set_estimate(nack_share_of, self.estimator.rtt)
        videos: list[VideoDemand] = []
        audio = 0.0
        for mid, track in self._tracks.items():
            publication = track.downtrack.publication
            if publication is None:
                continue
            if track.downtrack.kind == "audio":
                audio += policy.audio_cost(publication.layers[0].bitrate_bps, track.red)
                continue
            if not self.adaptive:
                track.downtrack.set_layer(0)
                continue
            role, called_on = track.describe()
            prio, pausable = policy.priority(role, publication.name, called_on, self.viewer_role)
            videos.append(VideoDemand(mid, prio, publication.layer_bitrates(), pausable))
        video_cost = 1.0
        if self.adaptive:
            self.lossy = self._lossy()
            self.protecting = self.lossy and self._queue_free()
            if self.lossy:
                video_cost += policy.PROTECT_OVERHEAD
                videos = [
                    VideoDemand(
                        v.track,
                        v.priority,
                        tuple(int(b * video_cost) for b in v.layers_bps),
                        v.pausable,
                    )
                    for v in videos
                ]
        committed = audio
        if self.adaptive:
            chosen = self.allocator.allocate(target, audio, videos, now, proven)
            for video in videos:
                layer = chosen[video.track]
                self._tracks[video.track].downtrack.set_layer(layer)
                committed += video.layers_bps[layer] if layer is not None else 0
        self._committed_bps = committed
        if long_path:
            self._probe(target, audio, videos, now)
            self._pad(self.prober.padding_bps(committed, now))
        video_bps = committed - audio
        self._protect_bps = video_bps * (1 - 1 / video_cost)
        self._video_bps = video_bps / video_cost
        # The pacer smooths bursts; the allocator keeps the average within the estimate. A
        # stream with no lower layer must still get through at its own rate.
        self.pacer.set_rate(policy.PACING_FACTOR * max(target, committed))

    def spare_bps(self, now: float | None = None) -> float:
        """What the estimate leaves after the live audio and video: what a download that must
        not hurt them (a deck's prefetched pages) may use. Never below DOC_MIN_BPS, so it
        still ends on a link the lesson fills."""
        target = self.estimator.target(self._clock() if now is None else now)
        return max(policy.DOC_MIN_BPS, target - self._committed_bps)

    def _lossy(self) -> bool:
        """The link loses at random where copies pay (see policy): the allocator budgets for
        them whenever this holds, so a queue that pauses the copies cannot open an upgrade."""
        # The packet window knows a lossy link within a few seconds of a join (the smoothed
        # loss takes ~10 s to climb there, and the join froze meanwhile), and it leaves
        # congestion's loss out.
        window = self.estimator.window_loss
        loss = self.estimator.loss_avg if window is None else window
        unknown = self.estimator.reports < policy.MIN_REPORTS_TO_GROW
        wanted = loss >= policy.PROTECT_LOSS_ON or (
            self.lossy and (unknown or loss >= policy.PROTECT_LOSS_OFF)
        )
        rtt = self.estimator.rtt
        return (
            wanted
            and (rtt is None or rtt >= policy.PROTECT_MIN_RTT_S)
            and self._video_bps <= policy.PROTECT_MAX_VIDEO_BPS
        )

    def _queue_free(self) -> bool:
        """No standing queue: loss is not congestion's, copies do not add to a full queue."""
        queue = self.estimator.queue_delay
        return queue is None or queue < policy.QUEUE_DELAY_HIGH / 2

    def _sent_bytes(self) -> int:
        return sum(rtc_internals.sent_counts(t.sender)[1] for t in self._tracks.values())

    def health(self) -> dict[str, Any]:
        now = self._clock()
        est = self.estimator
        layers: dict[str, str | None] = {}
        degraded = False
        for mid, track in self._tracks.items():
            dt = track.downtrack
            if dt.kind != "video" or dt.publication is None:
                continue
            layer = dt.current_layer
            names = dt.publication.layer_names()
            layers[mid] = names[layer] if layer is not None and layer < len(names) else None
            degraded |= layer is None or (len(names) > 1 and layer > 0)
        queue = max(self.pacer.queue_delay, est.queue_delay or 0.0)
        target = est.target(now)
        return {
            "quality": policy.health(est.loss, target, queue, degraded),
            "estimate_kbps": round(target / 1000),
            "sent_kbps": round(est.sent_bps / 1000),
            "loss_pct": round(est.loss * 100, 1),
            "rtt_ms": None if est.rtt is None else round(est.rtt * 1000),
            "queue_ms": round(queue * 1000),
            "layers": layers,
            "protected": self.protecting,
            "probing": self.prober.running,
            "probes": [self.prober.probes, self.prober.failures],
            "nack_refused": self.nack.refused,
            "paced_drops": self.pacer.dropped_packets,
        }

    def close(self) -> None:
        self._closed = True
        for handle in self._padding:
            handle.cancel()
        self.pacer.close()
        for task in self._resends:
            task.cancel()
