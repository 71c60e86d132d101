"""server/recording.py after a crash: finalizing is safe to repeat, and the slide events kept
beside a recording are the ones of its time, with the page shown when it began."""

from __future__ import annotations

import json
import time
from pathlib import Path

from media.frames import EncodedFrame
from media.recorder import DiskPolicy, Recorder
from server.recording import (
    RecordingPolicy,
    RecordingService,
    copy_slide_events,
    read_meta,
    write_meta,
)
from tests.test_recorder import make_source, read_back, vp8_frames


def cut_short_recording(path: Path, frames: int = 60) -> None:
    rec = Recorder(path)
    video = make_source("video", "video/VP8")
    rec.attach("video", video)
    t0 = time.monotonic()
    for i, (data, key) in enumerate(vp8_frames(frames)):
        video.push(EncodedFrame(data, i * 3000, key, t0 + i / 30))
    rec.close()
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) * 3 // 4])


async def test_a_crash_while_finalizing_loses_nothing(tmp_path: Path) -> None:
    service = RecordingService(tmp_path, RecordingPolicy(False, DiskPolicy()))
    directory = tmp_path / "recordings" / "r1"
    directory.mkdir(parents=True)
    write_meta(
        directory,
        {
            "id": "r1",
            "room": "room",
            "state": "recording",
            "started_at": 1000.0,
            "media_start": 1000.2,
        },
    )
    # The previous attempt moved the cut file aside, then died while copying.
    cut_short_recording(directory / "lesson.partial.webm")
    (directory / "lesson.webm").write_bytes(b"\x1a\x45\xdf\xa3 half a copy")
    pending = service.interrupted()
    assert pending == [directory]
    assert service.recover(pending) == ["r1"]
    meta = read_meta(directory)
    assert meta["state"] == "interrupted" and 1.0 < meta["duration"] < 2.0
    assert meta["ended_at"] == 1000.2 + meta["duration"]
    assert not (directory / "lesson.partial.webm").exists()
    times, ids, _ = read_back(directory / "lesson.webm")
    assert ids == list(range(len(ids))) and times[-1] == meta["duration"]
    assert service.interrupted() == []


def test_slide_events_of_the_recording_with_the_page_shown_at_its_start(tmp_path: Path) -> None:
    src = tmp_path / "slide-events.jsonl"
    lines = [
        {"t": 10, "type": "deck", "deck": "a"},
        {"t": 20, "type": "page", "page": 4},
        {"t": 30, "type": "deck", "deck": "b"},  # a new deck: page 4 of "a" no longer counts
        {"t": 40, "type": "ink", "points": []},  # ink before the start: wiped by the page later
        {"t": 110, "type": "page", "page": 2},
        {"t": 150, "type": "clear"},
        {"t": 300, "type": "page", "page": 9},  # after the end
    ]
    src.write_text("".join(json.dumps(e) + "\n" for e in lines) + '{"t": 3')  # torn last line
    dst = tmp_path / "kept.jsonl"
    assert copy_slide_events(src, dst, 100.0, 200.0) == 3
    kept = [json.loads(x) for x in dst.read_text().splitlines()]
    assert [(e["t"], e["type"]) for e in kept] == [(30, "deck"), (110, "page"), (150, "clear")]
    assert copy_slide_events(tmp_path / "missing.jsonl", dst, 0, 1) == 0
