"""`tongke bench record`: what recording a lesson costs the server, against forwarding it.

The Tongke server runs in its own process (its CPU read from /proc for it alone). A teacher in
this process publishes the synthetic 720p camera (VP8 pinned at ~1.5 Mbps) and a tone (Opus);
one classroom receives them without decoding. Windows alternate, recording off then on, so a
drift in the machine's load hits both alike:
- forward_cpu_core_fraction_per_stream: the server's CPU over the windows without recording
  (receive the lesson, forward it to one classroom);
- record_cpu_core_fraction_per_stream: the windows with recording minus those without (remux
  into WebM on the writer thread, plus the loop's share);
- bytes_per_minute: the recorded files' bytes over their media duration.
A "stream" is one lesson's teacher camera + microphone: what one recording holds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from media.rtc_internals import sent_counts, use_host_addresses
from media.synthetic import SyntheticVideoTrack, ToneAudioTrack
from server.client import Participant
from server.tokens import TokenIssuer

from .peers import TongkePeer, pin_vp8_bitrate
from .servers import free_port, start_server

log = logging.getLogger("bench.record")

WIDTH, HEIGHT, FPS = 1280, 720, 30
TARGET_BITRATE = 1_500_000
ROOM = "bench-record"
WARMUP = 8.0
GOAL_RECORD_CORE_FRACTION = 0.05  # the issue: recording must cost under 5% of a core


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("record", help="recording's CPU cost against forwarding")
    p.add_argument("--seconds", type=float, default=10.0, help="per window")
    p.add_argument("--pairs", type=int, default=3, help="off/on window pairs")
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def run_record_cli(args: argparse.Namespace) -> int:
    if args.seconds <= 0 or args.pairs < 1:
        print("--seconds must be > 0 and --pairs >= 1", file=sys.stderr)
        return 2
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    result = asyncio.run(run_record_bench(args.seconds, args.pairs))
    if not args.json:
        for key, value in result.items():
            print(f"{key:40} {value}")
    print(json.dumps(result, ensure_ascii=False))
    return 0


async def run_record_bench(seconds: float, pairs: int) -> dict[str, Any]:
    use_host_addresses(["127.0.0.1"])
    pin_vp8_bitrate(TARGET_BITRATE)
    with tempfile.TemporaryDirectory(prefix="tongke-bench-record-") as tmp:
        return await _run(Path(tmp), seconds, pairs)


async def _run(workdir: Path, seconds: float, pairs: int) -> dict[str, Any]:
    secret = secrets.token_urlsafe(32)
    port = free_port()
    data = workdir / "var"
    config = workdir / "tongke.toml"
    config.write_text(
        f'[server]\nport = {port}\nice_addresses = ["127.0.0.1"]\n[tokens]\nsecret = "{secret}"\n'
        f'[data]\ndir = "{data}"\n[demo]\nconsortium = ""\n[recording]\ndefault = false\n'
        # Forwarding alone: no server-made lower layers (their encoders are not forwarding).
        "[media]\nladder = false\n"
        "min_free_mb = 64\n"
    )
    server = await start_server(
        "server.cli", ["--config", str(config), "serve"], port, workdir / "server.log"
    )
    issuer = TokenIssuer(secret)
    teacher_token = issuer.mint(ROOM, "teacher", "主讲教师", "t")
    teacher = Participant(encoded=True)
    windows: dict[str, list[float]] = {"off": [], "on": []}
    loads: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            classroom = TongkePeer(http, server.url, issuer.mint(ROOM, "classroom", "课堂1"))
            try:
                await teacher.connect(server.url, teacher_token)
                await teacher.join()
                camera = SyntheticVideoTrack(WIDTH, HEIGHT, FPS)
                published = await teacher.publish({"camera": camera, "mic": ToneAudioTrack()})
                await classroom.join()
                await _until_receiving(classroom)
                await asyncio.sleep(WARMUP)
                sender = published["camera"].sender
                octets0, t0 = sent_counts(sender)[1], time.monotonic()
                frames0 = classroom.received.frames
                for _ in range(pairs):
                    for state in ("off", "on"):
                        if state == "on":
                            await _post(http, server.url, "start", teacher_token)
                            await asyncio.sleep(1.0)  # the first keyframe opens the file
                        cpu0, w0 = server.cpu_seconds(), time.monotonic()
                        await asyncio.sleep(seconds)
                        windows[state].append(
                            (server.cpu_seconds() - cpu0) / (time.monotonic() - w0)
                        )
                        loads.append(os.getloadavg()[0])
                        if state == "on":
                            await _post(http, server.url, "stop", teacher_token)
                elapsed = time.monotonic() - t0
                kbps = (sent_counts(sender)[1] - octets0) * 8 / elapsed / 1000
                fps = (classroom.received.frames - frames0) / elapsed
                if classroom.errors:
                    raise RuntimeError(f"signalling errors: {classroom.errors}")
            finally:
                await asyncio.gather(teacher.close(), classroom.close(), return_exceptions=True)
    finally:
        await server.stop()
    return _summary(seconds, pairs, windows, loads, kbps, fps, data / "recordings")


def _summary(
    seconds: float,
    pairs: int,
    windows: dict[str, list[float]],
    loads: list[float],
    kbps: float,
    fps: float,
    recordings: Path,
) -> dict[str, Any]:
    forward = statistics.fmean(windows["off"])
    record = statistics.fmean(
        on - off for on, off in zip(windows["on"], windows["off"], strict=True)
    )
    total_bytes, total_s = 0, 0.0
    files = []
    for meta_path in sorted(recordings.glob("*/meta.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        total_bytes += int(meta.get("bytes", 0))
        total_s += float(meta.get("duration", 0))
        files.append({"state": meta["state"], "bytes": meta.get("bytes"), "s": meta["duration"]})
    return {
        "seconds_per_window": seconds,
        "pairs": pairs,
        "source": {"codec": "VP8+Opus", "width": WIDTH, "height": HEIGHT, "fps_target": FPS},
        "publisher_video_kbps": round(kbps, 1),
        "classroom_fps": round(fps, 2),
        "forward_cpu_core_fraction_per_stream": round(forward, 4),
        "record_cpu_core_fraction_per_stream": round(record, 4),
        "server_cpu_off": [round(x, 4) for x in windows["off"]],
        "server_cpu_on": [round(x, 4) for x in windows["on"]],
        "bytes_per_minute": round(total_bytes / total_s * 60) if total_s else None,
        "recordings": files,
        "load_average_1m": [round(x, 2) for x in loads],
        "goals_met": {
            "record_cpu_core_fraction_per_stream<0.05": record < GOAL_RECORD_CORE_FRACTION
        },
    }


async def _until_receiving(peer: TongkePeer, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while peer.received.frames < 30:
        if time.monotonic() > deadline:
            raise RuntimeError("the classroom received no video")
        await asyncio.sleep(0.1)


async def _post(http: aiohttp.ClientSession, url: str, action: str, token: str) -> None:
    async with http.post(f"{url}/api/recording/{ROOM}/{action}?token={token}") as resp:
        if resp.status != 200:
            raise RuntimeError(f"recording {action}: {resp.status} {await resp.text()}")
