"""The link benchmark's classroom: receives the lesson behind the emulated link and records
what a person in the room would see and hear.

Runs in the far namespace (its own process, started by bench/link.py). Encoded mode (our
time-bounded assembler on the receive side); video decoded in its own thread, in order; a frame
counts as shown when it decodes and its frame id reads back. Every Nth shown frame is scored
(PSNR/SSIM against the re-rendered reference) on another thread, skipped when that thread is
still busy. Writes one JSON file at the end:
  shown [[id, mono, wall, w, h], ...], keyframes [mono...], video_bytes [[mono, n, rtp ts, key]...],
  audio_ts [rtp timestamps], quality [[id, psnr, ssim]...], link [server link messages],
  joined_mono, first_frame_mono, unreadable.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import threading
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from media import rtc_internals
from media.frames import EncodedFrame
from media.synthetic import read_frame_id
from server.client import Participant, RemoteTrack

from .link_publisher import lesson_source
from .quality import Judge, MediaTimes

QUALITY_EVERY = 4  # score every Nth shown frame (when the scorer keeps up)
ASSEMBLER_EVERY_S = 0.5
DECODE_QUEUE = 120  # frames; past this the decoder thread is hopelessly behind


class Recorder:
    def __init__(self, frames_file: str) -> None:
        self.shown: list[list[Any]] = []
        self.keyframes: list[float] = []
        self.video_bytes: list[list[float]] = []
        self.audio_ts: list[int] = []
        self.quality: list[list[float]] = []
        self.link: list[dict[str, Any]] = []
        self.video_packets: list[list[float]] = []  # [mono, seq, timestamp, bytes, marker]
        self.assembler: list[dict[str, Any]] = []  # receive-side assembler state, sampled
        self.unreadable = 0
        self.decode_dropped = 0
        self.joined_mono: float | None = None
        self._decode_q: queue.Queue[bytes | None] = queue.Queue()
        self._score_q: queue.Queue[tuple[int, np.ndarray] | None] = queue.Queue(maxsize=1)
        self._judge = Judge(lesson_source(), MediaTimes(frames_file))
        self._threads = [
            threading.Thread(target=self._decode_loop, name="decode", daemon=True),
            threading.Thread(target=self._score_loop, name="score", daemon=True),
        ]
        for t in self._threads:
            t.start()

    # -- on the event loop ---------------------------------------------------------------

    def on_frame(self, remote: RemoteTrack, frame: EncodedFrame) -> None:
        now = time.monotonic()
        if remote.kind == "audio":
            self.audio_ts.append(frame.timestamp)
            return
        if remote.source != "camera":
            return
        self.video_bytes.append([now, len(frame.data), frame.timestamp, int(frame.keyframe)])
        if frame.keyframe:
            self.keyframes.append(now)
        if self._decode_q.qsize() >= DECODE_QUEUE:
            self.decode_dropped += 1
            return
        self._decode_q.put(frame.data)

    def on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "link":
            self.link.append({"mono": time.monotonic(), **message})

    # -- threads ---------------------------------------------------------------------------

    def _decode_loop(self) -> None:
        codec = av.CodecContext.create("libvpx", "r")
        n = 0
        while (data := self._decode_q.get()) is not None:
            try:
                pictures = codec.decode(av.Packet(data))
            except av.error.FFmpegError:
                continue  # broken frame: the next keyframe repairs the picture
            for picture in pictures:
                mono, wall = time.monotonic(), time.time()
                frame_id = read_frame_id(picture)
                if frame_id is None:
                    self.unreadable += 1
                    continue
                self.shown.append([frame_id, mono, wall, picture.width, picture.height])
                n += 1
                if n % QUALITY_EVERY == 0 and self._score_q.empty():
                    plane = picture.planes[0]
                    rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                    with contextlib.suppress(queue.Full):
                        self._score_q.put_nowait((frame_id, rows[:, : plane.width].copy()))

    def _score_loop(self) -> None:
        while (item := self._score_q.get()) is not None:
            frame_id, luma = item
            scored = self._judge.score(frame_id, luma)
            if scored is not None:
                self.quality.append([frame_id, round(scored[0], 3), round(scored[1], 5)])

    def close(self) -> None:
        self._decode_q.put(None)
        with contextlib.suppress(queue.Full):
            self._score_q.put(None, timeout=1.0)
        for t in self._threads:
            t.join(timeout=5.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "joined_mono": self.joined_mono,
            "shown": self.shown,
            "keyframes": self.keyframes,
            "video_bytes": self.video_bytes,
            "audio_ts": self.audio_ts,
            "quality": self.quality,
            "link": self.link,
            "video_packets": self.video_packets,
            "assembler": self.assembler,
            "unreadable": self.unreadable,
            "decode_dropped": self.decode_dropped,
        }


def log_video_packets(recorder: Recorder) -> None:
    """Record every video RTP packet as it reaches our receive-side assembler: the only way to
    tell a frame delayed on the way from one held back by the assembler."""
    add = rtc_internals._AssemblerBuffer.add

    def logged(self, packet):  # noqa: ANN001, ANN202 - aiortc RtpPacket
        if self._receiver.track.kind == "video":
            recorder.video_packets.append([
                round(time.monotonic(), 4), packet.sequence_number, packet.timestamp,
                len(packet.payload), int(packet.marker)])
        return add(self, packet)

    rtc_internals._AssemblerBuffer.add = logged  # type: ignore[method-assign]


async def sample_assemblers(participant: Participant, recorder: Recorder) -> None:
    """Every ASSEMBLER_EVERY_S: where each video assembler stands (waiting for a keyframe,
    holding packets behind a gap): the receive side's share of a freeze."""
    while True:
        await asyncio.sleep(ASSEMBLER_EVERY_S)
        for mid, hook in list(participant._hooks.items()):
            a = hook.assembler
            if a is None or a.kind != "video":
                continue
            recorder.assembler.append({
                "mono": round(time.monotonic(), 3), "mid": mid, "next": a._next,
                "highest": a._highest, "stored": len(a._packets),
                "waiting_keyframe": a._waiting_keyframe, "frames_out": a.frames_out,
                "frames_skipped": a.frames_skipped,
            })


async def run(args: argparse.Namespace) -> None:
    recorder = Recorder(args.frames)
    log_video_packets(recorder)
    participant = Participant(encoded=True)
    participant.on_encoded_frame.append(recorder.on_frame)
    participant.on_message.append(recorder.on_message)
    try:
        await participant.connect(args.url, args.token)
        recorder.joined_mono = time.monotonic()
        await participant.join()
        sampler = asyncio.ensure_future(sample_assemblers(participant, recorder))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(participant.closed.wait(), args.seconds)
        sampler.cancel()
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(participant.close(), 5.0)
        recorder.close()
        Path(args.out).write_text(json.dumps(recorder.to_json()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.link_receiver")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--frames", required=True, help="the publisher's frames file")
    parser.add_argument("--out", required=True)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
