"""Every touch of aiortc's (and aioice's) private internals lives here, and only here.

Pinned to aiortc 1.16.0 / aioice 0.13.0. `check_compatibility()` runs at start-up and in the
tests: an upgrade that moves any of these hooks fails loudly instead of silently decoding.

Hooks:
- the receive side: swap the receiver's jitter buffer for our FrameAssembler, so complete
  encoded frames go to the forwarder and nothing ever reaches aiortc's decoder thread;
- the send side: a subscriber's PLI/FIR reaches us instead of a (non-existent) encoder; its
  RTCP feedback (REMB, receiver reports, RTT) is observed; its NACK answers pass a budget; its
  connection's RTP goes through our pacer;
- RTCP out: a PLI to the publisher; one REMB per connection instead of one per stream;
  counters of what a sender sent;
- ICE: which host addresses aioice offers (it skips 127.0.0.1, which tests and a one-machine
  demo need);
- codecs: redundant audio (RFC 2198 `red/48000/2`), which aiortc does not know.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aioice.ice
import aiortc
import aiortc.codecs
import aiortc.rtcrtpreceiver
import aiortc.rtcrtpsender
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Decoder, Encoder
from aiortc.codecs.opus import OpusDecoder, OpusEncoder
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpSrPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from . import red
from .assembler import FrameAssembler
from .frames import EncodedFrame, starts_frame

AIORTC_VERSION = "1.16.0"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_REMOTE_STREAMS_ATTR = "_RTCRtpReceiver__remote_streams"
_CODECS_ATTR = "_RTCRtpReceiver__codecs"
_DECODER_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"
_PACKET_COUNT_ATTR = "_RTCRtpSender__packet_count"
_OCTET_COUNT_ATTR = "_RTCRtpSender__octet_count"
log = logging.getLogger(__name__)

_LSR_ATTR = "_RTCRtpSender__lsr"
_LSR_TIME_ATTR = "_RTCRtpSender__lsr_time"


class IncompatibleAiortc(RuntimeError):
    pass


def check_compatibility() -> None:
    """Raise if the installed aiortc no longer has the internals we hook."""
    if aiortc.__version__ != AIORTC_VERSION:
        raise IncompatibleAiortc(
            f"Tongke hooks aiortc {AIORTC_VERSION} internals, found {aiortc.__version__}"
        )
    for cls, names in (
        (
            RTCRtpReceiver,
            ["_handle_rtp_packet", "_send_rtcp", "_send_rtcp_pli", "_send_rtcp_nack"],
        ),
        (RTCRtpSender, ["_send_keyframe", "_handle_rtcp_packet", "_retransmit"]),
        (RTCRtpTransceiver, []),
    ):
        for name in names:
            if not callable(getattr(cls, name, None)):
                raise IncompatibleAiortc(f"aiortc {cls.__name__}.{name} is gone")
    if not callable(getattr(aioice.ice, "get_host_addresses", None)):
        raise IncompatibleAiortc("aioice.ice.get_host_addresses is gone")
    for module, name in (
        (aiortc.rtcrtpsender, "get_encoder"),
        (aiortc.rtcrtpreceiver, "get_decoder"),
    ):
        if not callable(getattr(module, name, None)):
            raise IncompatibleAiortc(f"{module.__name__}.{name} is gone")
    if not isinstance(getattr(aiortc.codecs, "CODECS", None), dict):
        raise IncompatibleAiortc("aiortc.codecs.CODECS is gone")


class _AssemblerBuffer:
    """Stands where aiortc's JitterBuffer stood; feeds our assembler instead.

    aiortc calls `add(packet)` with `packet._data` already depayloaded and expects
    `(pli_flag, frame)`; returning no frame keeps the decoder thread idle for good.
    """

    def __init__(self, receiver: RTCRtpReceiver, make: Callable[[str], FrameAssembler]) -> None:
        self._receiver = receiver
        self._make = make
        self._assembler: FrameAssembler | None = None
        self.ssrc: int | None = None
        self._last_nack_check = 0.0

    @property
    def capacity(self) -> int:
        return 1 << 16

    def add(self, packet) -> tuple[bool, None]:  # noqa: ANN001 - aiortc RtpPacket
        if self._assembler is None:
            codec = getattr(self._receiver, _CODECS_ATTR).get(packet.payload_type)
            if codec is None:
                return False, None
            self._assembler = self._make(codec.name.lower())
        self.ssrc = packet.ssrc
        assembler = self._assembler
        now = time.monotonic()
        assembler.add(
            packet.sequence_number,
            packet.timestamp,
            bool(packet.marker),
            packet._data,
            now,
            starts_frame(assembler.codec, packet.payload),
        )
        if now - self._last_nack_check >= 0.02:
            self._last_nack_check = now
            lost = assembler.due_nacks(now)
            if lost:
                asyncio.ensure_future(self._receiver._send_rtcp_nack(packet.ssrc, lost))
        return False, None


class ConnectionRemb:
    """One REMB per connection, covering every stream it receives: the sum of the streams'
    own estimates.

    aiortc runs one estimator per received stream and sends each as its own REMB; a browser
    takes any REMB as the cap for its whole connection, so a camera sent as three layers
    starved at the smallest layer's estimate (~30 kbps each, measured).
    """

    STALE_S = 5.0  # a stream that stopped reporting no longer counts
    EVERY_S = 0.25  # at most this often, unless the sum falls

    def __init__(self) -> None:
        self._streams: dict[int, tuple[int, list[int], float]] = {}  # id -> (bps, ssrcs, when)
        self._sent_at = 0.0
        self._sent_bps = 0

    def install(self, receiver: RTCRtpReceiver) -> None:
        send = receiver._send_rtcp
        key = id(receiver)

        async def send_rtcp(packet) -> None:  # noqa: ANN001 - aiortc RTCP packet
            if not (isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP):
                await send(packet)
                return
            try:
                bps, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            now = time.monotonic()
            self._streams[key] = (bps, ssrcs, now)
            total, covered = self.total(now)
            if now - self._sent_at >= self.EVERY_S or total < 0.9 * self._sent_bps:
                self._sent_at, self._sent_bps = now, total
                await send(
                    RtcpPsfbPacket(
                        fmt=RTCP_PSFB_APP,
                        ssrc=packet.ssrc,
                        media_ssrc=0,
                        fci=pack_remb_fci(total, covered),
                    )
                )

        receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]

    def total(self, now: float) -> tuple[int, list[int]]:
        """(sum of the fresh per-stream estimates, the SSRCs they cover)."""
        fresh = [v for v in self._streams.values() if now - v[2] <= self.STALE_S]
        return sum(v[0] for v in fresh), sorted({s for v in fresh for s in v[1]})


class ReceiverHook:
    """Forwarding hook on one publisher's RTCRtpReceiver. Install before media flows."""

    def __init__(
        self,
        receiver: RTCRtpReceiver,
        kind: str,
        on_frame: Callable[[EncodedFrame], None],
        on_keyframe_needed: Callable[[], None],
        max_wait: float = 0.4,
        remb: ConnectionRemb | None = None,
    ) -> None:
        if getattr(receiver, _DECODER_THREAD_ATTR, None) is not None:
            raise IncompatibleAiortc("receiver already started: hook must precede receive()")
        self.receiver = receiver
        if remb is not None:
            remb.install(receiver)

        def make(codec: str) -> FrameAssembler:
            self.assembler = FrameAssembler(
                codec, kind, on_frame, on_keyframe_needed, max_wait=max_wait
            )
            return self.assembler

        self.assembler: FrameAssembler | None = None
        self._buffer = _AssemblerBuffer(receiver, make)
        setattr(receiver, _JITTER_ATTR, self._buffer)

    async def send_pli(self) -> None:
        """Ask the publisher for a keyframe (RFC 4585 PLI)."""
        if self._buffer.ssrc is not None:
            await self.receiver._send_rtcp_pli(self._buffer.ssrc)


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Route a subscriber's PLI/FIR on `sender` to `callback` (the stock one only flags an
    encoder, which forwarded tracks do not have)."""
    sender._send_keyframe = callback  # type: ignore[method-assign]


@dataclass
class Feedback:
    """What one RTCP packet told a sender about its receiver."""

    loss: float | None = None  # fraction lost since the last report (0..1)
    packets: int | None = None  # packets the receiver expected since its last report
    remb_bps: int | None = None
    rtt: float | None = None  # seconds, aiortc's smoothed value from SR/RR timing


def tap_sender(
    sender: RTCRtpSender,
    on_feedback: Callable[[Feedback], None],
    allow_retransmit: Callable[[int], bool],
) -> None:
    """Observe the RTCP feedback reaching `sender`, and gate its NACK answers."""
    handle = sender._handle_rtcp_packet
    retransmit = sender._retransmit
    last_count = -1
    last_highest: int | None = None  # extended highest sequence of the previous report

    async def handle_rtcp(packet) -> None:  # noqa: ANN001 - aiortc RTCP packet
        nonlocal last_count, last_highest
        feedback = Feedback()
        if isinstance(packet, (RtcpRrPacket, RtcpSrPacket)):
            for report in packet.reports:
                if report.ssrc == sender._ssrc:
                    feedback.loss = report.fraction_lost / 256
                    if last_highest is not None:
                        feedback.packets = max(0, report.highest_sequence - last_highest)
                    last_highest = report.highest_sequence
                    count = getattr(sender, _PACKET_COUNT_ATTR)
                    # aiortc stamps an idle sender's SRs with its last packet's NTP time, so
                    # a paused stream's reports match the wrong SR: negative or tiny RTTs.
                    # Take a sample only from a sender that sent since its last report.
                    if count != last_count:
                        feedback.rtt = _rtt_sample(sender, report.lsr, report.dlsr)
                    last_count = count
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                feedback.remb_bps = unpack_remb_fci(packet.fci)[0]
            except ValueError:
                pass
        await handle(packet)
        if feedback.loss is not None or feedback.remb_bps is not None:
            try:
                on_feedback(feedback)
            except Exception:  # a bug of ours must not stop aiortc's DTLS receive loop
                log.exception("feedback handler failed")

    async def gated_retransmit(sequence_number: int) -> None:
        if allow_retransmit(sequence_number):
            await retransmit(sequence_number)

    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]
    sender._retransmit = gated_retransmit  # type: ignore[method-assign]
    sender._tongke_resend = retransmit  # type: ignore[attr-defined]


async def resend(sender: RTCRtpSender, sequence_number: int) -> None:
    """Send a packet again from the sender's history (as RTX when negotiated), unasked: loss
    protection. A receiver that already has it drops the copy; one that lost it is spared the
    round trip of a NACK."""
    await getattr(sender, "_tongke_resend", sender._retransmit)(sequence_number)


def _rtt_sample(sender: RTCRtpSender, lsr: int, dlsr: int) -> float | None:
    """One round trip from a report's LSR/DLSR, as aiortc computes it but unsmoothed."""
    if not dlsr or getattr(sender, _LSR_ATTR) != lsr:
        return None
    sent_at = getattr(sender, _LSR_TIME_ATTR)
    rtt = time.time() - sent_at - dlsr / 65536
    return rtt if rtt > 0 else None


def sender_ssrc(sender: RTCRtpSender) -> tuple[int, int]:
    """(media SSRC, retransmission SSRC) of a sender."""
    return sender._ssrc, sender._rtx_ssrc


def route_through(sender: RTCRtpSender, send: Callable[[bytes], Awaitable[None]]) -> Callable:
    """Make everything the sender's transport sends go through `send` (a pacer).

    Idempotent per transport; call after each negotiation (BUNDLE may swap transports).
    Returns the transport's own send, for the pacer to deliver with.
    """
    transport = sender.transport
    original = getattr(transport, "_tongke_original_send", None)
    if original is None:
        original = transport._send_rtp
        transport._tongke_original_send = original
    transport._send_rtp = send
    return original


def rebundle(pc: RTCPeerConnection) -> None:
    """After an answer: move every transceiver onto the BUNDLE transport.

    With aiortc's BALANCED policy a transceiver added while an offer is outstanding borrows
    the transport of an older one of its kind; when that one is not yet bundled, aiortc drops
    it at the answer and never moves the newcomer off it: its media goes nowhere.
    """
    description = pc.localDescription or pc.remoteDescription
    if description is None or "a=group:BUNDLE " not in description.sdp:
        return
    first_mid = description.sdp.split("a=group:BUNDLE ", 1)[1].split()[0]
    primary = None
    for transceiver in pc.getTransceivers():
        if transceiver.mid == first_mid:
            primary = transceiver.receiver.transport
    if primary is None and pc.sctp is not None and pc.sctp.mid == first_mid:
        primary = pc.sctp.transport
    if primary is None:
        return
    for transceiver in pc.getTransceivers():
        if transceiver.mid is not None and transceiver.sender.transport is not primary:
            transceiver.sender.setTransport(primary)
            transceiver.receiver.setTransport(primary)


def packets_received(receiver: RTCRtpReceiver) -> int:
    """RTP packets a receiver got so far, on all its SSRCs (RTX included). Not getStats():
    aiortc files every SSRC of a receiver under one stats id, so once a retransmission came,
    the RTX stream's count hid the media stream's (a watchdog then saw a silent track)."""
    streams = getattr(receiver, _REMOTE_STREAMS_ATTR)
    return sum(stream.packets_received for stream in streams.values())


def sent_counts(sender: RTCRtpSender) -> tuple[int, int]:
    """(packets, payload bytes) a sender has sent, without building a stats report."""
    return getattr(sender, _PACKET_COUNT_ATTR), getattr(sender, _OCTET_COUNT_ATTR)


def negotiated_codec(transceiver: RTCRtpTransceiver) -> RTCRtpCodecParameters | None:
    """The media codec a transceiver settled on (after the answer is applied)."""
    for codec in transceiver._codecs:
        if not codec.mimeType.lower().endswith("/rtx"):
            return codec
    return None


def use_host_addresses(addresses: list[str] | None) -> None:
    """Make aioice offer exactly these host addresses (None: its own choice).

    Process-wide by necessity (aioice reads a module function); set once at start-up.
    """
    if not hasattr(use_host_addresses, "_original"):
        use_host_addresses._original = aioice.ice.get_host_addresses  # type: ignore[attr-defined]
    original = use_host_addresses._original  # type: ignore[attr-defined]
    if addresses is None:
        aioice.ice.get_host_addresses = original
    else:
        fixed = list(addresses)
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [
            a for a in fixed if (":" in a and use_ipv6) or (":" not in a and use_ipv4)
        ]


# -- redundant audio --------------------------------------------------------------------------

RED_PAYLOAD_TYPE = 63  # what Chrome uses; any free dynamic type would do


def red_primary_type(codec: RTCRtpCodecParameters) -> int:
    """The Opus payload type a RED codec wraps (its fmtp is "96/96")."""
    for key in codec.parameters:
        first = str(key).split("/")[0]
        if first.isdigit():
            return int(first)
    return 96


class _RedEncoder(Encoder):
    """Packs forwarded Opus packets (or encodes raw audio) as RED with distance 1."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self._packer = red.RedPacker(red_primary_type(codec))
        self._opus = OpusEncoder()

    def encode(self, frame, force_keyframe: bool = False):  # noqa: ANN001, ANN201
        payloads, timestamp = self._opus.encode(frame, force_keyframe)
        return [self._packer.pack(p, timestamp) for p in payloads], timestamp

    def pack(self, packet):  # noqa: ANN001, ANN201
        payloads, timestamp = self._opus.pack(packet)
        return [self._packer.pack(p, timestamp) for p in payloads], timestamp


class _RedDecoder(Decoder):
    """Stock receive path: decode the primary frame (losses are not repaired here; our
    assembler repairs them on the forwarding and measuring paths)."""

    def __init__(self) -> None:
        self._opus = OpusDecoder()

    def decode(self, encoded_frame):  # noqa: ANN001, ANN201
        try:
            encoded_frame.data = red.parse(encoded_frame.data)[-1][0]
        except ValueError:
            return []
        return self._opus.decode(encoded_frame)


def enable_red() -> None:
    """Teach aiortc `red/48000/2` (process-wide, idempotent): offered after Opus, so a peer
    takes it only where we prefer it (the SFU's audio to subscribers)."""
    audio = aiortc.codecs.CODECS["audio"]
    if any(c.mimeType.lower() == "audio/red" for c in audio):
        return
    opus = next(c for c in audio if c.mimeType.lower() == "audio/opus")
    audio.insert(
        audio.index(opus) + 1,
        RTCRtpCodecParameters(
            mimeType="audio/red",
            clockRate=48000,
            channels=2,
            payloadType=RED_PAYLOAD_TYPE,
            parameters={f"{opus.payloadType}/{opus.payloadType}": None},
        ),
    )
    stock_encoder = aiortc.rtcrtpsender.get_encoder
    stock_decoder = aiortc.rtcrtpreceiver.get_decoder

    def get_encoder(codec: RTCRtpCodecParameters) -> Encoder:
        if codec.mimeType.lower() == "audio/red":
            return _RedEncoder(codec)
        return stock_encoder(codec)

    def get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
        if codec.mimeType.lower() == "audio/red":
            return _RedDecoder()
        return stock_decoder(codec)

    aiortc.rtcrtpsender.get_encoder = get_encoder
    aiortc.rtcrtpreceiver.get_decoder = get_decoder
