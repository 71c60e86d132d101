"""A recorded lesson survives a killed server: the server runs in its own process, records the
teacher (config default on), gets SIGKILL mid-lesson, and the file decodes up to near the kill;
the next start finalizes it (cues, duration) and copies the lesson's slide events beside it."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import av

from bench.servers import free_port, start_server
from media.rtc_internals import use_host_addresses
from media.synthetic import SyntheticVideoTrack, ToneAudioTrack, read_frame_id
from server.client import Participant
from server.tokens import TokenIssuer
from tests.conftest import TEST_SECRET

ROOM = "yandi-g7-math"
# The newest cluster (<= 1 s) and the writer's queue may be lost; keyframe wait at the start.
MAX_LOSS_S = 2.5


def decode(path: Path) -> tuple[float, float, int, list[int]]:
    """Last video and audio frame times, video frames, and frame ids read from the pictures."""
    last_video = last_audio = 0.0
    frames, ids = 0, []
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            for frame in packet.decode():
                if packet.stream.type == "video":
                    frames += 1
                    last_video = max(last_video, float(frame.time))
                    if frames % 15 == 0:
                        frame_id = read_frame_id(frame)
                        if frame_id is not None:
                            ids.append(frame_id)
                else:
                    last_audio = max(last_audio, float(frame.time))
    return last_video, last_audio, frames, ids


async def test_killed_server_leaves_a_playable_recording(tmp_path: Path) -> None:
    use_host_addresses(["127.0.0.1"])
    port = free_port()
    data = tmp_path / "var"
    config = tmp_path / "tongke.toml"
    config.write_text(
        f'[server]\nport = {port}\nice_addresses = ["127.0.0.1"]\n'
        f'[tokens]\nsecret = "{TEST_SECRET}"\n[data]\ndir = "{data}"\n'
        '[demo]\nconsortium = ""\n[recording]\ndefault = true\nmin_free_mb = 1\n'
    )
    args = ["--config", str(config), "serve"]
    server = await start_server("server.cli", args, port, tmp_path / "server.log")
    issuer = TokenIssuer(TEST_SECRET)
    teacher = Participant()
    events = data / "lessons" / ROOM / "slide-events.jsonl"
    events.parent.mkdir(parents=True)
    try:
        await teacher.connect(server.url, issuer.mint(ROOM, "teacher", "王老师", "t", "yandi"))
        await teacher.join()
        await teacher.publish(
            {"camera": SyntheticVideoTrack(640, 360, fps=30), "mic": ToneAudioTrack()}
        )
        recordings = data / "recordings"
        deadline = time.monotonic() + 20
        media: Path | None = None
        while time.monotonic() < deadline:
            found = list(recordings.glob("*/lesson.webm")) if recordings.exists() else []
            if found and found[0].stat().st_size > 20_000:
                media = found[0]
                break
            await asyncio.sleep(0.2)
        assert media is not None, server.log_tail()
        with events.open("a") as f:  # what the slides module writes during the lesson
            f.write(json.dumps({"t": time.time() - 600, "type": "deck", "deck": "old"}) + "\n")
            f.write(json.dumps({"t": time.time(), "type": "deck", "deck": "d1"}) + "\n")
            await asyncio.sleep(2)
            f.write(json.dumps({"t": time.time(), "type": "page", "page": 2}) + "\n")
            await asyncio.sleep(3)
            f.write(json.dumps({"t": time.time(), "type": "page", "page": 3}) + "\n")
        await asyncio.sleep(1)
        killed_at = time.time()
        server.proc.kill()  # SIGKILL: no trailer, no meta update, nothing flushed on the way out
        server.proc.wait()
    finally:
        await teacher.close()
        await server.stop()

    meta = json.loads((media.parent / "meta.json").read_text())
    assert meta["state"] == "recording" and meta["teacher"] == "王老师"
    assert meta["media_start"] is not None
    expected = killed_at - meta["media_start"]
    last_video, last_audio, frames, ids = decode(media)
    assert expected - MAX_LOSS_S <= last_video <= expected + 0.5, (last_video, expected)
    assert last_audio >= expected - MAX_LOSS_S
    assert frames >= 20 * last_video  # the synthetic camera sends 30 fps
    assert len(ids) >= 5 and ids == sorted(ids)  # real pictures, in order

    # The next start finalizes the cut-short file: same media, now with a duration.
    server = await start_server("server.cli", args, port, tmp_path / "server2.log")
    try:
        deadline = time.monotonic() + 20
        while json.loads((media.parent / "meta.json").read_text())["state"] == "recording":
            assert time.monotonic() < deadline, server.log_tail()
            await asyncio.sleep(0.1)
    finally:
        await server.stop()
    meta = json.loads((media.parent / "meta.json").read_text())
    assert meta["state"] == "interrupted"
    assert abs(meta["duration"] - last_video) < 0.3
    with av.open(str(media)) as container:
        assert container.duration is not None and container.duration / 1e6 >= last_video - 0.3
    again = decode(media)
    assert abs(again[0] - last_video) < 0.1 and again[2] == frames
    kept = [
        json.loads(line) for line in (media.parent / "slide-events.jsonl").read_text().splitlines()
    ]
    # The deck shown when recording began, then the events during it.
    assert [(e["type"], e.get("deck"), e.get("page")) for e in kept] == [
        ("deck", "old", None),
        ("deck", "d1", None),
        ("page", None, 2),
        ("page", None, 3),
    ]
