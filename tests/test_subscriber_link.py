"""SubscriberLink with real aiortc senders fed crafted RTCP: feedback steers the layers."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    pack_remb_fci,
)

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


def rr(sender, loss: float) -> RtcpRrPacket:
    report = RtcpReceiverInfo(
        ssrc=sender._ssrc,
        fraction_lost=int(loss * 256),
        packets_lost=0,
        highest_sequence=0,
        jitter=0,
        lsr=0,
        dlsr=0,
    )
    return RtcpRrPacket(ssrc=1, reports=[report])


async def test_feedback_moves_the_teacher_camera_between_layers():
    stats, clock = ForwardStats(), Clock()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = DownTrack("video", stats)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    sender = transceiver.sender
    link = SubscriberLink(clock=clock)
    link.add("0", transceiver, track, lambda: ("teacher", False))
    track.bind(camera(stats))

    async def feed(seconds: float, bps: int, loss: float) -> None:
        for _ in range(int(seconds * 4)):  # a browser's RR+REMB, four times a second
            await sender._handle_rtcp_packet(remb(sender, bps))
            await sender._handle_rtcp_packet(rr(sender, loss))
            link.tick(clock.t)
            clock.t += 0.25

    await feed(3, 300_000, 0.03)  # the rural link
    assert track._target_layer == 2  # 180p
    assert link.health()["quality"] in ("weak", "poor")
    await feed(6, 3_000_000, 0.0)  # the link recovers
    assert track._target_layer == 0  # 720p
    health = link.health()
    assert health["estimate_kbps"] >= 1_500 and health["loss_pct"] == 0.0
    await feed(1, 250_000, 0.25)  # capacity collapses
    assert track._target_layer == 2
    link.close()
    await pc.close()


async def test_baseline_link_forwards_the_top_layer_whatever_the_feedback():
    stats, clock = ForwardStats(), Clock()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = DownTrack("video", stats)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    sender = transceiver.sender
    link = SubscriberLink(adaptive=False, clock=clock)
    link.add("0", transceiver, track, lambda: ("teacher", False))
    track.bind(camera(stats))
    await sender._handle_rtcp_packet(remb(sender, 200_000))
    link.tick(clock.t)
    assert track._target_layer == 0
    link.close()
    await pc.close()


def rtp(ssrc: int, seq: int, size: int) -> bytes:
    header = bytes([0x80, 96]) + seq.to_bytes(2, "big") + (0).to_bytes(4, "big")
    return header + ssrc.to_bytes(4, "big") + bytes(size - 12)


async def test_lossy_link_protects_video_within_what_the_allocator_paid(monkeypatch):
    import asyncio

    from media import policy, rtc_internals

    resent: list[int] = []

    async def resend(sender, seq: int) -> None:
        resent.append(seq)

    monkeypatch.setattr(rtc_internals, "resend", resend)
    stats, clock = ForwardStats(), Clock()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = DownTrack("video", stats)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    sender = transceiver.sender
    link = SubscriberLink(clock=clock)
    link.add("0", transceiver, track, lambda: ("teacher", False))
    track.bind(camera(stats))
    for _ in range(20):  # 5 s of a radio link losing 3% at random
        await sender._handle_rtcp_packet(remb(sender, 300_000))
        await sender._handle_rtcp_packet(rr(sender, 0.03))
        link.tick(clock.t)
        clock.t += 0.25
    assert link.protecting and link.health()["protected"]
    assert track._target_layer == 2  # the copies are paid for: 180p, twice

    # 180p frames of ~700 bytes at 15 fps: every packet gets its copy ...
    t = clock.t
    for seq in range(10):
        link._on_rtp_sent(rtp(sender._ssrc, seq, 700), t + seq / 15)
    # ... a 6 KB slide change at once: only what the bank holds
    for seq in range(10, 16):
        link._on_rtp_sent(rtp(sender._ssrc, seq, 1000), t + 0.7)
    await asyncio.sleep(policy.PROTECT_DELAY_S + 0.05)
    assert resent[:10] == list(range(10))
    assert 0 < len(resent) - 10 < 6

    for _ in range(60):  # the link heals: protection stops
        await sender._handle_rtcp_packet(rr(sender, 0.0))
        link.tick(clock.t)
        clock.t += 0.25
    assert not link.protecting
    link.close()
    await pc.close()


async def test_collapsed_link_pauses_even_the_teacher_camera_and_resumes_it():
    stats, clock = ForwardStats(), Clock()
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    track = DownTrack("video", stats)
    transceiver = pc.addTransceiver(track, direction="sendonly")
    sender = transceiver.sender
    link = SubscriberLink(clock=clock)
    link.add("0", transceiver, track, lambda: ("teacher", False))
    track.bind(camera(stats))

    async def feed(seconds: float, bps: int, loss: float) -> None:
        for _ in range(int(seconds * 4)):
            await sender._handle_rtcp_packet(remb(sender, bps))
            await sender._handle_rtcp_packet(rr(sender, loss))
            link.tick(clock.t)
            clock.t += 0.25

    await feed(2, 300_000, 0.0)
    assert track._target_layer == 2
    await feed(3, 90_000, 0.3)  # 100 kbps left: not even 180p fits, audio must
    assert track.paused
    assert not link.protecting  # heavy loss here is congestion, not radio noise
    await feed(8, 400_000, 0.0)
    assert not track.paused  # the camera is back as soon as the link is
    link.close()
    await pc.close()
