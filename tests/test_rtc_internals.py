"""The aiortc hooks: these fail loudly when an aiortc upgrade moves what we hook."""

import aioice.ice
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtpPacket, wrap_rtx

from media import rtc_internals


def test_installed_aiortc_has_every_hooked_internal():
    rtc_internals.check_compatibility()
    receiver_attrs = RTCRtpReceiver.__init__.__code__.co_names
    for name in ("_RTCRtpReceiver__jitter_buffer", "_RTCRtpReceiver__codecs"):
        assert name in receiver_attrs, f"aiortc receiver no longer has {name}"
    sender_attrs = RTCRtpSender.__init__.__code__.co_names
    for name in ("_RTCRtpSender__packet_count", "_RTCRtpSender__octet_count"):
        assert name in sender_attrs, f"aiortc sender no longer has {name}"


async def test_receiver_hook_replaces_jitter_buffer_and_refuses_a_started_receiver():
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    transceiver = pc.addTransceiver("video", direction="recvonly")
    receiver = transceiver.receiver
    rtc_internals.ReceiverHook(receiver, "video", lambda f: None, lambda: None)
    assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, rtc_internals._AssemblerBuffer)
    receiver._RTCRtpReceiver__decoder_thread = object()  # as if receive() had run
    with pytest.raises(rtc_internals.IncompatibleAiortc):
        rtc_internals.ReceiverHook(receiver, "video", lambda f: None, lambda: None)
    receiver._RTCRtpReceiver__decoder_thread = None
    await pc.close()


async def test_keyframe_request_hook_and_sent_counts():
    calls = []
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver("video", direction="sendonly").sender
    rtc_internals.on_keyframe_request(sender, lambda: calls.append(1))
    sender._send_keyframe()  # what aiortc calls on an incoming PLI/FIR
    assert calls == [1]
    assert rtc_internals.sent_counts(sender) == (0, 0)
    await pc.close()


def test_host_addresses_can_be_pinned_and_restored():
    try:
        rtc_internals.use_host_addresses(["127.0.0.1", "::1"])
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]
    finally:
        rtc_internals.use_host_addresses(None)
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(True, False)  # aioice's own choice


async def test_rtt_comes_only_from_a_sender_that_is_sending():
    """aiortc stamps an idle sender's SRs with its last packet's NTP time: a report then
    matches the wrong SR. Samples are taken only while the sender sends, and never < 0."""
    import time

    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtp import RtcpReceiverInfo, RtcpRrPacket

    from media.downtrack import DownTrack
    from media.stats import ForwardStats

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver(DownTrack("video", ForwardStats()), direction="sendonly").sender
    seen: list[float | None] = []
    rtc_internals.tap_sender(sender, lambda fb: seen.append(fb.rtt), lambda seq: True)
    setattr(sender, rtc_internals._LSR_ATTR, 1234)

    def report(dlsr_s: float) -> RtcpRrPacket:
        info = RtcpReceiverInfo(ssrc=sender._ssrc, fraction_lost=0, packets_lost=0,
                                highest_sequence=0, jitter=0, lsr=1234, dlsr=int(dlsr_s * 65536))
        return RtcpRrPacket(ssrc=1, reports=[info])

    setattr(sender, rtc_internals._LSR_TIME_ATTR, time.time() - 0.5)
    setattr(sender, rtc_internals._PACKET_COUNT_ATTR, 10)
    await sender._handle_rtcp_packet(report(0.35))  # sent since: a real 150 ms sample
    assert seen[-1] is not None and abs(seen[-1] - 0.15) < 0.05
    setattr(sender, rtc_internals._LSR_TIME_ATTR, time.time() - 0.1)
    await sender._handle_rtcp_packet(report(0.35))  # idle sender, stale SR: no sample
    assert seen[-1] is None
    setattr(sender, rtc_internals._PACKET_COUNT_ATTR, 11)
    await sender._handle_rtcp_packet(report(0.35))  # sending again, but negative: dropped
    assert seen[-1] is None
    await pc.close()


async def test_one_remb_per_connection_sums_the_streams_estimates():
    from aiortc import RTCConfiguration, RTCPeerConnection
    from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receivers = [pc.addTransceiver("video", direction="recvonly").receiver for _ in range(3)]
    out: list = []
    for receiver in receivers:
        async def send(packet, out=out) -> None:
            out.append(packet)

        receiver._send_rtcp = send
    remb = rtc_internals.ConnectionRemb()
    for receiver in receivers:
        remb.install(receiver)

    def packet(bps: int, ssrc: int) -> RtcpPsfbPacket:
        return RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0,
                              fci=pack_remb_fci(bps, [ssrc]))

    # the three layers of one camera, each with its own estimator's figure
    for receiver, (bps, ssrc) in zip(
        receivers, ((1_300_000, 11), (450_000, 12), (130_000, 13)), strict=True
    ):
        await receiver._send_rtcp(packet(bps, ssrc))
    await receivers[0]._send_rtcp("not a remb")  # other RTCP passes untouched
    rembs = [p for p in out if isinstance(p, RtcpPsfbPacket)]
    assert "not a remb" in out
    assert 1 <= len(rembs) <= 2  # throttled: one REMB, not one per stream
    remb._sent_at = 0.0  # the next one is due
    await receivers[2]._send_rtcp(packet(130_000, 13))
    bps, ssrcs = unpack_remb_fci([p for p in out if isinstance(p, RtcpPsfbPacket)][-1].fci)
    assert bps == 1_880_000 and ssrcs == [11, 12, 13]
    await pc.close()


async def test_packets_received_counts_every_stream_of_a_receiver():
    """A keyframe watchdog watches this count. aiortc's getStats() files a receiver's SSRCs
    under one id, so once a retransmission (RTX) came, it showed the RTX stream's count: with
    loss protection paused the media looked silent and a keyframe was asked for every second."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = pc.addTransceiver("video", direction="recvonly").receiver
    rtc_internals.ReceiverHook(receiver, "video", lambda f: None, lambda: None)
    receiver._RTCRtpReceiver__codecs = {
        96: RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96),
        97: RTCRtpCodecParameters(
            mimeType="video/rtx", clockRate=90000, payloadType=97, parameters={"apt": 96}
        ),
    }
    receiver._RTCRtpReceiver__rtx_ssrc = {2: 1}

    def media(seq: int) -> RtpPacket:
        return RtpPacket(payload_type=96, sequence_number=seq, timestamp=seq, ssrc=1,
                         payload=b"\x10\x00\x00\x00")

    await receiver._handle_rtp_packet(media(1), 0)
    await receiver._handle_rtp_packet(wrap_rtx(media(1), 97, 1, 2), 0)  # a copy
    before = rtc_internals.packets_received(receiver)
    for seq in range(2, 6):  # media only from now on
        await receiver._handle_rtp_packet(media(seq), 0)
    assert before == 2
    assert rtc_internals.packets_received(receiver) == 6
    await pc.close()
