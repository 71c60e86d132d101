"""SubscriberLink with real aiortc senders fed crafted RTCP: feedback steers the layers."""

from __future__ import annotations

import asyncio

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

from media import policy, rtc_internals
from media.downtrack import DownTrack
from media.publication import Publication
from media.source import Source
from media.stats import ForwardStats
from media.subscriber_link import SubscriberLink


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def camera(stats: ForwardStats) -> Publication:
    async def pli() -> None:
        pass

    pub = Publication("t", "camera", "video", ladder=False)
    for name, bps in zip("hml", (1_200_000, 400_000, 120_000), strict=True):
        source = Source(f"t:camera/{name}", "t", f"camera/{name}", "video", pli, stats)
        source.mime_type, source.bitrate_bps = "video/VP8", bps
        pub.set_layer(name, source)
    return pub


def remb(sender, bps: int) -> RtcpPsfbPacket:
    return RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(bps, [sender._ssrc])
    )


def rr(sender, loss: float, highest: int = 0) -> RtcpRrPacket:
    report = RtcpReceiverInfo(
        ssrc=sender._ssrc,
        fraction_lost=int(loss * 256),
        packets_lost=0,
        highest_sequence=highest,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[report])


class Steered:
    """A teacher camera on a real aiortc sender, steered by a SubscriberLink on a fake clock."""

    def __init__(self, adaptive: bool = True) -> None:
        self.stats, self.clock = ForwardStats(), Clock()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.track = DownTrack("video", self.stats)
        transceiver = self.pc.addTransceiver(self.track, direction="sendonly")
        self.sender = transceiver.sender
        self.link = SubscriberLink(adaptive=adaptive, clock=self.clock)
        self.link.add("0", transceiver, self.track, lambda: ("teacher", False))
        self.track.bind(camera(self.stats))
        self.highest = 0

    async def feed(self, seconds: float, bps: int | None, loss: float) -> None:
        """A browser's RR (+ REMB) four times a second."""
        for _ in range(int(seconds * 4)):
            if bps is not None:
                await self.sender._handle_rtcp_packet(remb(self.sender, bps))
            self.highest += 40  # each report covers 40 packets
            await self.sender._handle_rtcp_packet(rr(self.sender, loss, self.highest))
            self.link.tick(self.clock.t)
            self.clock.t += 0.25

    async def close(self) -> None:
        self.link.close()
        await self.pc.close()


async def test_feedback_moves_the_teacher_camera_between_layers():
    s = Steered()
    await s.feed(3, 300_000, 0.03)  # the rural link
    assert s.track._target_layer == 2  # 180p
    assert s.link.health()["quality"] in ("weak", "poor")
    await s.feed(9, 3_000_000, 0.0)  # the link recovers (protection ends after 5 s clean)
    assert s.track._target_layer == 0  # 720p
    health = s.link.health()
    assert health["estimate_kbps"] >= 1_500 and health["loss_pct"] == 0.0
    await s.feed(1, 250_000, 0.25)  # capacity collapses
    assert s.track._target_layer == 2
    await s.close()


async def test_baseline_link_forwards_the_top_layer_whatever_the_feedback():
    s = Steered(adaptive=False)
    await s.sender._handle_rtcp_packet(remb(s.sender, 200_000))
    s.link.tick(s.clock.t)
    assert s.track._target_layer == 0
    await s.close()


def rtp(ssrc: int, seq: int, size: int) -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (0).to_bytes(4, "big")
    return header + ssrc.to_bytes(4, "big") + bytes(size - 12)


async def test_lossy_link_protects_video_within_what_the_allocator_paid(monkeypatch):
    resent: list[int] = []

    async def resend(sender, seq: int) -> None:
        resent.append(seq)

    monkeypatch.setattr(rtc_internals, "resend", resend)
    s = Steered()
    await s.feed(5, 300_000, 0.03)  # a radio link losing 3% at random
    assert s.link.protecting and s.link.health()["protected"]
    assert s.track._target_layer == 2  # the copies are paid for: 180p, twice

    # 180p frames of ~700 bytes at 15 fps: every packet gets its copy ...
    t, ssrc = s.clock.t, s.sender._ssrc
    for seq in range(10):
        s.link._on_rtp_sent(rtp(ssrc, seq, 700), t + seq / 15)
    # ... a 12 KB slide change at once: only what the bank holds
    for seq in range(10, 22):
        s.link._on_rtp_sent(rtp(ssrc, seq, 1000), t + 0.7)
    await asyncio.sleep(policy.PROTECT_DELAY_S + 0.05)
    assert resent[:10] == list(range(10))
    assert 0 < len(resent) - 10 < 12

    await s.feed(15, None, 0.0)  # the link heals: protection stops
    assert not s.link.protecting
    await s.close()


async def test_congestion_stops_protection_and_keeps_the_teacher_on_its_lowest_layer():
    s = Steered()
    await s.feed(5, 300_000, 0.03)
    assert s.link.protecting
    for _ in range(8):  # a standing queue: 300 ms over the path's minimum in every report
        s.link.estimator.on_rtt(0.15, s.clock.t)
        s.clock.t += 0.25
    for _ in range(8):
        s.link.estimator.on_rtt(0.45, s.clock.t)
        await s.feed(0.25, 120_000, 0.12)
    assert not s.link.protecting  # copies would only add to a full queue
    assert s.track._target_layer == 2 and not s.track.paused  # the lesson stays on
    await s.close()


async def test_no_protection_where_a_nack_is_fast_enough_or_copies_too_costly():
    lan = Steered()
    for _ in range(20):  # 3% loss, but a 5 ms round trip: the resend beats any freeze
        lan.link.estimator.on_rtt(0.005, lan.clock.t)
        await lan.feed(0.25, 300_000, 0.03)
    assert not lan.link.protecting
    await lan.close()
    fast = Steered()
    await fast.feed(12, 3_000_000, 0.0)  # 720p flowing (probed up) ...
    await fast.feed(3, 3_000_000, 0.03)  # ... then loss: sending 1.2 Mbps twice is not the cure
    assert not fast.link.protecting
    await fast.close()


async def test_protection_starts_within_seconds_of_a_join_on_a_lossy_link():
    """The smoothed loss needs ~10 s of reports to reach the threshold; the packet window
    knows after a couple of seconds (a join on the rural link froze four times meanwhile)."""
    s = Steered()
    s.link.estimator.on_rtt(0.15, 0.0)
    await s.feed(2.5, 300_000, 0.03)  # 400 packets
    assert s.link.estimator.loss_avg < policy.PROTECT_LOSS_ON
    assert s.link.protecting
    await s.close()


async def test_an_upgrade_on_a_long_path_waits_for_a_probe_that_pads_up_to_its_rate(monkeypatch):
    resent: list[int] = []

    async def resend(sender, seq: int) -> None:
        resent.append(seq)

    monkeypatch.setattr(rtc_internals, "resend", resend)
    s = Steered()
    s.link.estimator.on_rtt(0.15, s.clock.t)  # a long path: a failed trial costs seconds
    for seq in range(20):  # some 180p packets went out: what the padding copies
        s.link._on_rtp_sent(rtp(s.sender._ssrc, seq, 1000), s.clock.t)
    while not s.link.prober.running:  # a clean link: the estimate grows past what we send
        await s.feed(0.25, 3_000_000, 0.0)
        assert s.track._target_layer == 2  # ... but no upgrade on the estimate alone
        assert s.clock.t < 1010
    assert s.link.health()["probing"]
    rate = s.link.prober.rate
    assert rate == 400_000 * policy.UPGRADE_HEADROOM  # one step: 360p, not 720p
    await asyncio.sleep(0.3)  # this tick's padding, spread over the tick
    # the padding fills what the probe asks beyond the media (120 kbps of 180p)
    expected = (rate - 120_000) * 0.25 / 8 / 1200
    assert abs(len(resent) - expected) <= 1 and set(resent) <= set(range(20))

    # Media sent during the probe is copied first (a packet lost in an overflow has its copy).
    resent.clear()
    for seq in range(20, 24):
        s.link._on_rtp_sent(rtp(s.sender._ssrc, seq, 1000), s.clock.t)
    s.link._pad(1_000_000)
    await asyncio.sleep(0.3)
    assert resent[:4] == [20, 21, 22, 23]

    # A report showing the queue overflow fails the probe: no upgrade, no probe for a while.
    await s.feed(0.25, None, 0.3)
    assert not s.link.prober.running and s.link.prober.failures == 1
    await s.feed(policy.PROBE_BACKOFF_S - 1, 3_000_000, 0.0)
    assert s.link.prober.probes == 1 and s.track._target_layer == 2

    # After the backoff, a probe that a clean report covers opens the upgrade.
    while s.link.prober.probes == 1:
        await s.feed(0.25, 3_000_000, 0.0)
    await s.feed(policy.PROBE_S + 0.5, 3_000_000, 0.0)
    assert s.link.prober.failures == 1 and s.link.prober.proven(s.clock.t) >= rate
    start = s.clock.t
    while s.track._target_layer != 1:  # 360p after the allocator's hold
        await s.feed(0.25, 3_000_000, 0.0)
        assert s.clock.t < start + policy.UPGRADE_HOLD_S + 1

    # The 720p step fails its probe: 360p stays (a failed probe is no reason to come down).
    await s.feed(0.25, 3_000_000, 0.0)
    assert s.link.prober.rate == 1_200_000 * policy.UPGRADE_HEADROOM
    await s.feed(0.25, None, 0.3)
    assert s.link.prober.failures == 2
    await s.feed(2, 3_000_000, 0.0)
    assert s.track._target_layer == 1
    await s.close()


async def test_on_a_lan_the_estimate_is_spent_without_probing():
    s = Steered()
    for _ in range(40):
        s.link.estimator.on_rtt(0.005, s.clock.t)
        await s.feed(0.25, 3_000_000, 0.0)
    assert s.track._target_layer == 0 and s.link.prober.probes == 0
    await s.close()


async def test_nacks_during_a_probe_fail_it_at_once(monkeypatch):
    async def resend(sender, seq: int) -> None:
        pass

    monkeypatch.setattr(rtc_internals, "resend", resend)
    s = Steered()
    s.link.estimator.on_rtt(0.15, s.clock.t)
    while not s.link.prober.running:
        await s.feed(0.25, 3_000_000, 0.0)
        assert s.clock.t < 1010
    for seq in range(30):  # media during the probe ...
        s.link._on_rtp_sent(rtp(s.sender._ssrc, seq, 1000), s.clock.t)
    for seq in (3, 4, 5):  # ... a run of it lost in the overflowing queue
        await s.sender._retransmit(seq)  # what a NACK from the receiver does
    assert not s.link.prober.running and s.link.prober.failures == 1
    assert s.track._target_layer == 2
    await s.close()


async def test_a_queue_overflowing_is_not_radio_loss_to_protect_against():
    s = Steered()
    s.link.estimator.on_rtt(0.15, s.clock.t)
    await s.feed(5, 1_000_000, 0.0)
    await s.feed(0.25, 250_000, 0.4)  # the link fell: one report loses 40%
    await s.feed(3, 250_000, 0.0)
    assert not s.link.lossy and not s.link.protecting  # no copies into the fallen link
    await s.close()


async def test_loss_while_the_remb_keeps_falling_is_congestion_not_radio_loss():
    s = Steered()
    s.link.estimator.on_rtt(0.15, s.clock.t)
    await s.feed(5, 1_000_000, 0.0)
    s.link.estimator.on_sent_rate(500_000)
    for bps in (700_000, 280_000, 250_000, 220_000):  # the link fell: a queue growing
        await s.feed(0.25, bps, 0.12)  # ... and overflowing, 12% per report
    await s.feed(3, 220_000, 0.0)
    assert not s.link.lossy and not s.link.protecting
    await s.close()
