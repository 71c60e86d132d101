"""The link benchmark's teacher: a synthetic lesson, encoded by us, published to the SFU.

Runs in the SFU's namespace (its own process, started by bench/link.py). Writes:
- `--frames`: one line per captured frame, `id mono wall media_t` (the receiver re-renders the
  reference picture of a frame from its id and media time);
- `--health`: the server's view of every participant's link (GET /api/rooms), one JSON line
  per poll, so the orchestrator can say why a run went the way it did.

    python -m bench.link_publisher --url http://127.0.0.1:8080 --token T --seconds 150 \
        --frames pub.frames --health health.jsonl [--layers 1|3] [--observer-token O]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import IO

import aiohttp
import av
from aiortc.mediastreams import MediaStreamTrack

from media import rtc_internals
from media.encoding import EncodedAudioTrack, EncodedVideoTrack, FrameTee
from media.synthetic import SyntheticVideoTrack, ToneAudioTrack
from server.client import Participant

WIDTH, HEIGHT, FPS = 1280, 720, 30
# (source name, width, height, bits/s): the teacher page's three camera layers.
LAYERS = (
    ("camera/h", 1280, 720, 1_200_000),
    ("camera/m", 640, 360, 400_000),
    ("camera/l", 320, 180, 120_000),
)
AUDIO_BPS = 32_000
# The fastest real-time VP8 setting: here the teacher's encoder shares two cores with the SFU
# and the classroom (a teacher's PC has its own), and both modes get the same stream.
CPU_USED = 16
HEALTH_EVERY_S = 1.0
SOURCE_SEED = 7  # the receiver renders references with the same seed


def lesson_source(seed: int = SOURCE_SEED) -> SyntheticVideoTrack:
    """The synthetic lesson both ends agree on (the receiver calls render() on its own)."""
    return SyntheticVideoTrack(WIDTH, HEIGHT, FPS, seed=seed)


class LoggedSource(MediaStreamTrack):
    """Passes the lesson's frames through, writing each frame's id and capture times."""

    kind = "video"

    def __init__(self, inner: SyntheticVideoTrack, out: IO[str]) -> None:
        super().__init__()
        self.inner, self._out = inner, out

    async def recv(self) -> av.VideoFrame:
        frame = await self.inner.recv()
        frame_id = (self.inner.frame_id - 1) & 0xFFFFFFFF  # the id just drawn into it
        media_t = frame.pts / 90_000
        self._out.write(f"{frame_id} {time.monotonic():.6f} {time.time():.6f} {media_t:.6f}\n")
        self._out.flush()  # the receiver reads this file while we write it
        return frame


async def poll_health(url: str, token: str, out: IO[str]) -> None:
    async with aiohttp.ClientSession() as http:
        while True:
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError, ValueError):
                async with http.get(
                    f"{url}/api/rooms", params={"token": token}, timeout=aiohttp.ClientTimeout(2)
                ) as resp:
                    rooms = await resp.json()
                out.write(json.dumps({"mono": time.monotonic(), "rooms": rooms}) + "\n")
                out.flush()
            await asyncio.sleep(HEALTH_EVERY_S)


async def wait_healthy(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(f"{url}/health") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                if time.monotonic() > deadline:
                    raise
            await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> None:
    await wait_healthy(args.url, 30.0)
    frames_out = Path(args.frames).open("w")
    lesson = LoggedSource(lesson_source(), frames_out)
    if args.layers == 3:
        tee = FrameTee(lesson)
        video = {
            name: EncodedVideoTrack(tee.branch(), w, h, bps, FPS, CPU_USED)
            for name, w, h, bps in LAYERS
        }
    else:
        video = {"camera": EncodedVideoTrack(lesson, WIDTH, HEIGHT, LAYERS[0][3], FPS, CPU_USED)}
    audio = EncodedAudioTrack(ToneAudioTrack(), AUDIO_BPS)
    participant = Participant()
    poller = None
    try:
        await participant.connect(args.url, args.token)
        await participant.join()
        transceivers = await participant.publish({**video, "mic": audio})
        for name, track in video.items():
            # The stock sender ignores PLI for pre-encoded tracks: route it to our encoder.
            rtc_internals.on_keyframe_request(transceivers[name].sender, track.request_keyframe)
        print(json.dumps({"event": "published", "tracks": list(transceivers)}), flush=True)
        if args.observer_token and args.health:
            poller = asyncio.ensure_future(
                poll_health(args.url, args.observer_token, Path(args.health).open("w"))
            )
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(participant.closed.wait(), args.seconds)
        print(
            json.dumps(
                {
                    "event": "summary",
                    "video": {
                        n: {"frames": t.frames, "keyframes": t.keyframes, "bytes": t.bytes}
                        for n, t in video.items()
                    },
                    "audio_packets": audio.packets,
                }
            ),
            flush=True,
        )
    finally:
        if poller is not None:
            poller.cancel()
        for track in (*video.values(), audio):
            track.stop()
        await participant.close()
        frames_out.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.link_publisher")
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--observer-token")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--frames", required=True)
    parser.add_argument("--health")
    parser.add_argument("--layers", type=int, choices=(1, 3), default=1)
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
