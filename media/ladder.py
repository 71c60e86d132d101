"""Lower layers for a single-layer publisher, made on the server: decode once, encode each
lower layer once, shared by every subscriber on it, and only while somebody watches it.

An old browser or `tongke publish` sends one camera stream; a rural classroom still needs
360p or 180p. The ladder consumes the top layer like a subscriber would, and feeds one
Source per lower layer. Encoders run at fixed layer bitrates, so no rate change ever
recreates them (aiortc's own encoder does, and each time costs a keyframe).
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction

import av

from . import policy
from .encoding import vp8_encoder
from .frames import VIDEO_CLOCK, EncodedFrame
from .source import Source

log = logging.getLogger(__name__)

MAX_PENDING = 8  # frames (~0.25 s) waiting for the worker; beyond: decode only, no encoding


class _Rung:
    def __init__(
        self, name: str, width: int, height: int, bitrate: int, fps: int, cpu_used: int
    ) -> None:
        self.name, self.width, self.height, self.bitrate = name, width, height, bitrate
        self.fps, self.cpu_used = fps, cpu_used
        self.encoder: av.VideoCodecContext | None = None
        self.force_keyframe = True
        self._last_pts: int | None = None

    def encode(self, frame: av.VideoFrame) -> list[av.Packet]:
        # A lower frame rate than the publisher's: skip frames that come too soon.
        pts = int(frame.pts or 0)
        if not self.force_keyframe and self._last_pts is not None:
            if (pts - self._last_pts) % (1 << 32) < 0.8 * VIDEO_CLOCK / self.fps:
                return []
        self._last_pts = pts
        if self.encoder is None:
            self.encoder = vp8_encoder(
                self.width, self.height, self.bitrate, self.fps, self.cpu_used
            )
        scaled = frame.reformat(width=self.width, height=self.height, format="yuv420p")
        scaled.pts = frame.pts
        scaled.time_base = frame.time_base
        # A decoded keyframe comes marked I, and libvpx obeys the mark: clear it, or every
        # keyframe of the publisher becomes one on every rung.
        scaled.pict_type = av.video.frame.PictureType.NONE
        if self.force_keyframe:
            scaled.pict_type = av.video.frame.PictureType.I
            self.force_keyframe = False
        return list(self.encoder.encode(scaled))


class Ladder:
    """Consumes `top` (as a subscriber would) and feeds `sources`, one per lower rung."""

    def __init__(self, top: Source, codec: str) -> None:
        self.top = top
        self._codec = codec  # "vp8" or "h264": what the publisher sends
        self._rungs = {rung[0]: _Rung(*rung) for rung in policy.LADDER_RUNGS}
        self.sources: dict[str, Source] = {}
        for name in self._rungs:
            self.sources[name] = Source(
                f"{top.id}~{name}",
                top.participant_id,
                f"{top.name}~{name}",
                "video",
                self._keyframe_request(name),
                top.stats,
            )
            self.sources[name].mime_type = "video/VP8"
        self._decoder: av.CodecContext | None = None
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="ladder")
        self._pending = 0
        self._waiting_keyframe = True
        self._active = False
        self._loop = asyncio.get_event_loop()
        self.frames_encoded = 0
        top.attach(self)

    def _keyframe_request(self, name: str):
        async def request() -> None:
            self._rungs[name].force_keyframe = True

        return request

    @property
    def active(self) -> bool:
        return any(s.subscriber_count for s in self.sources.values())

    def source_closed(self, source: Source) -> None:
        pass  # the publication closes the ladder with its top layer

    def push(self, frame: EncodedFrame, source: Source) -> None:
        """A frame of the top layer (called by `top`, on the event loop)."""
        active = self.active
        if active and not self._active:
            self._waiting_keyframe = True  # resume: the decoder needs a fresh start
            self.top.request_keyframe()
        self._active = active
        if not active:
            return
        if self._waiting_keyframe:
            if not frame.keyframe:
                return
            self._waiting_keyframe = False
        if self._pending >= 2 * MAX_PENDING:  # far behind: skip, restart at a keyframe
            self._waiting_keyframe = True
            self.top.request_keyframe()
            return
        # Behind: keep decoding (the decoder needs every frame; a keyframe round trip freezes
        # every rung) but encode nothing until the worker catches up: a lower frame rate.
        behind = self._pending >= MAX_PENDING
        wanted = [] if behind else [n for n, s in self.sources.items() if s.subscriber_count]
        self._pending += 1
        future = self._worker.submit(self._transcode, frame, wanted)
        future.add_done_callback(
            lambda f: self._loop.call_soon_threadsafe(self._deliver, f, frame.arrival)
        )

    def _transcode(self, frame: EncodedFrame, wanted: list[str]) -> dict[str, list[av.Packet]]:
        """Worker thread: decode once, encode each rung somebody watches."""
        if self._decoder is None:
            self._decoder = av.CodecContext.create(self._codec, "r")
        try:
            decoded = self._decoder.decode(av.Packet(frame.data))
        except av.FFmpegError as exc:
            log.warning("ladder: top layer failed to decode: %s", exc)
            return {}
        out: dict[str, list[av.Packet]] = {}
        for picture in decoded:
            picture.pts = frame.timestamp
            picture.time_base = Fraction(1, VIDEO_CLOCK)
            for name in wanted:
                out.setdefault(name, []).extend(self._rungs[name].encode(picture))
        return out

    def _deliver(self, future, arrival: float) -> None:
        self._pending -= 1
        try:
            result = future.result()
        except Exception:
            log.exception("ladder: transcode failed")
            self._waiting_keyframe = True
            return
        for name, packets in result.items():
            for packet in packets:
                self.frames_encoded += 1
                self.sources[name].push(
                    EncodedFrame(bytes(packet), int(packet.pts or 0), packet.is_keyframe, arrival)
                )

    def close(self) -> None:
        self.top.detach(self)
        for source in self.sources.values():
            source.close()
        self._worker.shutdown(wait=False, cancel_futures=True)
