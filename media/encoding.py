"""Publisher-side encoding we control: tracks that hand aiortc pre-encoded `av.Packet`s.

aiortc's own encoders start VP8 at 500 kbps, never go below 250 kbps, and run Opus at 96 kbps
stereo-ish rates with no in-band FEC; a publisher built on them cannot stand for a browser's
camera layers. aiortc's RTCRtpSender packs an `av.Packet` without encoding it, so these tracks
encode themselves:

- `EncodedVideoTrack`: VP8 (libvpx) at a fixed bitrate and size, keyframes only on request
  (wire `request_keyframe` to the sender with `rtc_internals.on_keyframe_request`: the stock
  sender ignores PLI on the packet path). The encoder is never recreated.
- `EncodedAudioTrack`: Opus at 32 kbps, voice mode, in-band FEC for an expected loss.
- `FrameTee`: one raw source feeding several encoders (a camera published as 2-3 layers).
"""

from __future__ import annotations

import asyncio
import fractions
from concurrent.futures import ThreadPoolExecutor

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
OPUS_RATE = 48_000
OPUS_FRAME = 960  # 20 ms
KEYFRAME_MAX_DIST = 3000  # frames: in effect keyframes only on request


def vp8_encoder(
    width: int, height: int, bitrate: int, fps: int = 30, cpu_used: int = 8
) -> av.VideoCodecContext:
    """Real-time VP8 as browsers configure it: no lookahead, error resilient, no timed
    keyframes (a keyframe costs 5-10 frames' worth of bits; send one when asked)."""
    ctx = av.CodecContext.create("libvpx", "w")
    ctx.width, ctx.height, ctx.pix_fmt, ctx.bit_rate = width, height, "yuv420p", bitrate
    ctx.time_base = VIDEO_TIME_BASE
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.gop_size = KEYFRAME_MAX_DIST
    ctx.options = {
        "deadline": "realtime",
        "cpu-used": str(cpu_used),  # 4-16 in real-time mode: higher is faster, coarser
        "lag-in-frames": "0",
        "error-resilient": "1",
        "auto-alt-ref": "0",
        "keyint_min": str(KEYFRAME_MAX_DIST),  # = gop size: no keyframes at scene cuts
        "undershoot-pct": "95",  # libwebrtc's settings: stay under the target ...
        "overshoot-pct": "15",  # ... and overshoot little
        "max-intra-rate": "300",  # a keyframe at most 3x an average frame: no huge bursts
        "buf-initial-sz": "500",
        "buf-optimal-sz": "600",
        "buf-sz": "1000",
    }
    return ctx


class EncodedVideoTrack(MediaStreamTrack):
    """Encodes a raw video track to VP8 packets at `width`x`height`, `bitrate` bits/s."""

    kind = "video"

    def __init__(
        self,
        source: MediaStreamTrack,
        width: int,
        height: int,
        bitrate: int,
        fps: int = 30,
        cpu_used: int = 8,
    ) -> None:
        super().__init__()
        self.source = source
        self.width, self.height, self.bitrate = width, height, bitrate
        self._encoder = vp8_encoder(width, height, bitrate, fps, cpu_used)
        self._force_keyframe = True
        # One thread per encoder: encoding in order, off the event loop that paces RTP.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"vp8-{height}p")
        self.frames = 0
        self.keyframes = 0
        self.bytes = 0

    def request_keyframe(self) -> None:
        self._force_keyframe = True

    def _encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        if (frame.width, frame.height) != (self.width, self.height) or frame.format.name != (
            "yuv420p"
        ):
            scaled = frame.reformat(width=self.width, height=self.height, format="yuv420p")
            scaled.pts, scaled.time_base = frame.pts, frame.time_base
            frame = scaled
        if self._force_keyframe:
            self._force_keyframe = False
            frame.pict_type = av.video.frame.PictureType.I
        else:
            frame.pict_type = av.video.frame.PictureType.NONE
        return list(self._encoder.encode(frame))

    async def recv(self) -> av.Packet:
        loop = asyncio.get_running_loop()
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.source.recv()
            packets = await loop.run_in_executor(self._executor, self._encode, frame)
            if not packets:
                continue
            packet = packets[-1]  # lag-in-frames 0: one packet per frame
            packet.pts = frame.pts
            packet.time_base = frame.time_base or VIDEO_TIME_BASE
            self.frames += 1
            self.keyframes += bool(packet.is_keyframe)
            self.bytes += packet.size
            return packet

    def stop(self) -> None:
        super().stop()
        self._executor.shutdown(wait=False, cancel_futures=True)


class EncodedAudioTrack(MediaStreamTrack):
    """Encodes a raw audio track (s16 mono 48 kHz, 20 ms frames) to Opus packets.

    Voice mode at 32 kbps with in-band FEC: each packet carries a low-rate copy of the one
    before, so a single lost packet is rebuilt by the receiver's decoder.
    """

    kind = "audio"

    def __init__(
        self, source: MediaStreamTrack, bitrate: int = 32_000, expected_loss_pct: int = 10
    ) -> None:
        super().__init__()
        self.source = source
        ctx = av.CodecContext.create("libopus", "w")
        ctx.sample_rate, ctx.layout, ctx.format, ctx.bit_rate = OPUS_RATE, "mono", "s16", bitrate
        ctx.time_base = fractions.Fraction(1, OPUS_RATE)
        ctx.options = {
            "application": "voip",
            "frame_duration": "20",
            "fec": "1",
            "packet_loss": str(expected_loss_pct),
        }
        self._encoder = ctx
        self._samples = 0  # our own clock: Opus' pre-skip makes its first pts negative
        self.packets = 0

    async def recv(self) -> av.Packet:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.source.recv()
            packets = self._encoder.encode(frame)  # ~0.1 ms: no thread needed
            if packets:
                packet = packets[-1]
                packet.pts = self._samples
                packet.time_base = fractions.Fraction(1, OPUS_RATE)
                self._samples += OPUS_FRAME
                self.packets += 1
                return packet


class FrameTee:
    """Feeds one raw source to several consumers (one per encoded layer).

    Each branch keeps at most `depth` frames: a slow encoder skips frames rather than
    delaying the others.
    """

    def __init__(self, source: MediaStreamTrack, depth: int = 2) -> None:
        self.source = source
        self._depth = depth
        self._queues: list[asyncio.Queue[av.VideoFrame | None]] = []
        self._task: asyncio.Task[None] | None = None

    def branch(self) -> MediaStreamTrack:
        queue: asyncio.Queue[av.VideoFrame | None] = asyncio.Queue()
        self._queues.append(queue)
        return _Branch(self, queue)

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            while True:
                frame = await self.source.recv()
                for queue in self._queues:
                    while queue.qsize() >= self._depth:
                        queue.get_nowait()
                    queue.put_nowait(frame)
        except MediaStreamError:
            for queue in self._queues:
                queue.put_nowait(None)

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.source.stop()


class _Branch(MediaStreamTrack):
    kind = "video"

    def __init__(self, tee: FrameTee, queue: asyncio.Queue[av.VideoFrame | None]) -> None:
        super().__init__()
        self._tee, self._queue = tee, queue

    async def recv(self) -> av.VideoFrame:
        self._tee._start()
        frame = await self._queue.get()
        if frame is None or self.readyState != "live":
            raise MediaStreamError
        return frame
