"""Recording without transcoding: a Consumer of a camera and a microphone Source that remuxes
their encoded frames (VP8 + Opus) into one WebM file, as they are forwarded.

Crash safety: the Matroska muxer writes a cluster at most every CLUSTER_MS and we ask FFmpeg to
flush after each write, so a killed server leaves a file that decodes up to the last closed
cluster (the trailer with cues and duration only adds seeking; `finalize()` rebuilds it by
copying packets). Muxing and disk writes run on one writer thread owned by the Recorder, so a
slow disk never stalls forwarding: the event loop only computes timestamps and enqueues.
"""

from __future__ import annotations

import fractions
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av

from .frames import AUDIO_CLOCK, VIDEO_CLOCK, EncodedFrame
from .source import Source

log = logging.getLogger(__name__)

CLUSTER_MS = 1000  # what a kill can lose, at most, beyond the write queue
MS = fractions.Fraction(1, 1000)
# A track whose RTP time drifts this far from its arrival time restarted its clock: re-anchor.
MAX_DRIFT_MS = 2000
# Frames waiting for the writer thread before we start dropping (about 30 s of a lesson).
MAX_QUEUE = 3000
RECORDABLE = {"video": "video/VP8", "audio": "audio/opus"}


@dataclass(frozen=True)
class DiskPolicy:
    """Free space the recording needs, checked before it starts and every `check_s` after."""

    min_free_bytes: int = 512 * 1024**2  # below: stop, keep what was written
    warn_free_bytes: int = 2 * 1024**3  # below: warn the teacher and staff once
    check_s: float = 5.0


class DiskSpaceError(Exception):
    def __init__(self, free: int, needed: int) -> None:
        super().__init__(f"{free // 1024**2} MB free, {needed // 1024**2} MB needed")
        self.free = free
        self.needed = needed


def free_bytes(path: Path) -> int:
    return shutil.disk_usage(path).free


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a VP8 key frame header (RFC 6386 9.1), else None."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(data[6:8], "little") & 0x3FFF
    return width, int.from_bytes(data[8:10], "little") & 0x3FFF


@dataclass
class _Track:
    """Turns one kind's RTP timestamps into milliseconds since the recording began."""

    clock: int
    source: Source | None = None
    anchor_rtp: int | None = None  # unwrapped RTP time at anchor_ms
    anchor_ms: float = 0.0
    last_raw: int = 0
    unwrapped: int = 0
    last_ms: int = -1
    waiting_key: bool = True

    def reset(self, source: Source | None) -> None:
        self.source, self.anchor_rtp, self.waiting_key = source, None, True

    def pts(self, rtp: int, arrival_ms: float) -> int:
        if self.anchor_rtp is None:
            self.unwrapped = self.last_raw = rtp
            self.anchor_rtp, self.anchor_ms = rtp, arrival_ms
        else:
            step = (rtp - self.last_raw) & 0xFFFFFFFF
            self.unwrapped += step - (1 << 32) if step >= 1 << 31 else step
            self.last_raw = rtp
        ms = self.anchor_ms + (self.unwrapped - self.anchor_rtp) * 1000 / self.clock
        if abs(ms - arrival_ms) > MAX_DRIFT_MS:  # the publisher's clock jumped
            self.anchor_rtp, self.anchor_ms, ms = self.unwrapped, arrival_ms, arrival_ms
        # Matroska wants rising timestamps per track; never go back, even after a re-anchor.
        out = max(round(ms), self.last_ms + 1)
        self.last_ms = out
        return out


@dataclass
class RecorderStats:
    video_frames: int = 0
    audio_frames: int = 0
    bytes: int = 0
    dropped: int = 0
    last_ms: int = 0
    warnings: list[str] = field(default_factory=list)


# What the writer thread reports, on the thread it runs on: ("disk_low" | "disk_full" |
# "write_failed", detail). Whoever owns the recorder moves it to its own loop.
Notify = Callable[[str, str], None]

_STOP = object()


class Recorder:
    """Consumer of one video and one audio Source, written to one WebM file."""

    def __init__(
        self,
        path: Path,
        disk: DiskPolicy | None = None,
        notify: Notify | None = None,
        on_start: Callable[[float], None] | None = None,
    ) -> None:
        self.path = path
        self.disk = disk or DiskPolicy()
        self._notify = notify or (lambda code, detail: None)
        self._on_start = on_start  # called on the loop with the unix time of the file's zero
        free = free_bytes(path.parent)
        if free < self.disk.min_free_bytes:
            raise DiskSpaceError(free, self.disk.min_free_bytes)
        self.stats = RecorderStats()
        self._tracks = {"video": _Track(VIDEO_CLOCK), "audio": _Track(AUDIO_CLOCK)}
        self._t0: float | None = None  # monotonic time of the file's zero: first video keyframe
        self.media_start_unix: float | None = None
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._closed = False
        self.stopped = threading.Event()  # the writer gave up (disk full, write error)
        self._thread = threading.Thread(target=self._write_loop, name=f"rec:{path.name}")
        self._thread.start()

    # -- Consumer ---------------------------------------------------------------------------

    def attach(self, kind: str, source: Source | None) -> None:
        """Record `source` as this kind from its next keyframe; None detaches."""
        track = self._tracks[kind]
        if track.source is source:
            return
        if track.source is not None:
            track.source.detach(self)
        track.reset(source)
        if source is not None:
            if source.mime_type != RECORDABLE[kind]:
                log.warning("recorder: %s is %s, not recordable", source.id, source.mime_type)
                track.source = None
                return
            source.attach(self)
            source.request_keyframe()

    def push(self, frame: EncodedFrame, source: Source) -> None:
        if self._closed or self.stopped.is_set():
            return
        kind = source.kind
        track = self._tracks[kind]
        if track.source is not source:
            return
        if track.waiting_key:
            if kind == "video" and not frame.keyframe:
                return
            track.waiting_key = False
        if self._t0 is None:
            if kind != "video":
                return  # the file starts with the teacher's picture
            size = vp8_size(frame.data)
            if size is None:
                return
            self._t0 = frame.arrival
            self.media_start_unix = time.time() - (time.monotonic() - frame.arrival)
            self._put(("open", size))
            if self._on_start is not None:
                self._on_start(self.media_start_unix)
        if self._queue.qsize() > MAX_QUEUE:
            self.stats.dropped += 1
            if kind == "video":
                track.waiting_key = True  # resume at a picture that decodes on its own
            return
        pts = track.pts(frame.timestamp, (frame.arrival - self._t0) * 1000)
        self._put((kind, frame.data, pts, frame.keyframe))

    def source_closed(self, source: Source) -> None:
        for track in self._tracks.values():
            if track.source is source:
                track.reset(None)

    def _put(self, item: object) -> None:
        self._queue.put(item)

    # -- ending -----------------------------------------------------------------------------

    def close(self) -> None:
        """Detach, write what is queued and the trailer. Blocks: call it off the loop."""
        if self._closed:
            return
        self._closed = True
        for kind in self._tracks:
            self.attach(kind, None)
        self._queue.put(_STOP)
        self._thread.join()

    # -- the writer thread ------------------------------------------------------------------

    def _write_loop(self) -> None:
        out: av.container.OutputContainer | None = None
        streams: dict[str, av.stream.Stream] = {}
        next_check = time.monotonic() + self.disk.check_s
        warned = False
        try:
            while True:
                item = self._queue.get()
                if item is _STOP:
                    break
                if self.stopped.is_set():
                    continue
                kind, *rest = item  # type: ignore[misc]
                if kind == "open":
                    out, streams = _open(self.path, *rest[0])
                    continue
                data, pts, keyframe = rest
                packet = av.Packet(data)
                packet.pts = packet.dts = pts
                packet.time_base = MS
                packet.stream = streams[kind]
                packet.is_keyframe = keyframe
                assert out is not None
                out.mux(packet)
                self.stats.bytes += len(data)
                self.stats.last_ms = max(self.stats.last_ms, pts)
                if kind == "video":
                    self.stats.video_frames += 1
                else:
                    self.stats.audio_frames += 1
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + self.disk.check_s
                    free = free_bytes(self.path.parent)
                    if free < self.disk.min_free_bytes:
                        self._give_up("disk_full", f"{free // 1024**2} MB free")
                    elif free < self.disk.warn_free_bytes and not warned:
                        warned = True
                        self.stats.warnings.append("disk_low")
                        self._notify("disk_low", f"{free // 1024**2} MB free")
        except Exception as exc:  # a full disk or a bad packet: keep what is written
            log.exception("recorder %s: write failed", self.path)
            self._give_up("write_failed", str(exc))
        finally:
            if out is not None:
                try:
                    out.close()
                except Exception:
                    log.exception("recorder %s: trailer not written", self.path)

    def _give_up(self, code: str, detail: str) -> None:
        self.stats.warnings.append(code)
        self.stopped.set()
        self._notify(code, detail)


def _open(path: Path, width: int, height: int):
    out = av.open(
        str(path),
        "w",
        format="webm",
        options={"cluster_time_limit": str(CLUSTER_MS), "flush_packets": "1"},
    )
    video = out.add_mux_stream("vp8", width=width, height=height)
    video.time_base = MS
    # An Opus encoder context that never encodes: opening it gives the OpusHead header
    # (CodecPrivate) that browsers need to play Opus in WebM.
    audio = out.add_stream("libopus", rate=48_000)
    audio.codec_context.layout = "stereo"
    audio.time_base = MS
    return out, {"video": video, "audio": audio}


def finalize(partial: Path, final: Path) -> float:
    """Copy the packets of a file cut short (no cues, no duration) into a complete one.
    Returns its duration in seconds. Packets are copied, never decoded."""
    last = 0.0
    with av.open(str(partial)) as src, av.open(str(final), "w", format="webm") as dst:
        mapping = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is None or packet.size == 0:
                continue
            stream = mapping[packet.stream.index]
            if packet.pts is not None and packet.time_base is not None:
                last = max(last, float(packet.pts * packet.time_base))
            packet.stream = stream
            dst.mux(packet)
    return last


def media_duration(path: Path) -> float:
    """Seconds of media in a WebM file, finalized or not (reads packets, decodes nothing)."""
    last = 0.0
    with av.open(str(path)) as src:
        for packet in src.demux():
            if packet.pts is not None and packet.time_base is not None and packet.size:
                last = max(last, float(packet.pts * packet.time_base))
    return last
