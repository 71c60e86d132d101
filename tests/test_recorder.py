"""media/recorder.py: real VP8 and Opus frames through a Source into WebM, read back with av."""

from __future__ import annotations

import fractions
import time
from pathlib import Path

import av
import numpy as np
import pytest

from media import recorder as recorder_module
from media.frames import EncodedFrame
from media.recorder import DiskPolicy, DiskSpaceError, Recorder, _Track, finalize, vp8_size
from media.source import Source
from media.stats import ForwardStats
from media.synthetic import SyntheticVideoTrack, read_frame_id


async def _no_pli() -> None:
    return None


def make_source(kind: str, mime: str) -> Source:
    source = Source(
        f"t:{kind}", "t", "camera" if kind == "video" else "mic", kind, _no_pli, ForwardStats()
    )
    source.mime_type = mime
    return source


def vp8_frames(n: int, width: int = 320, height: int = 180) -> list[tuple[bytes, bool]]:
    """n frames of the synthetic camera (frame ids drawn in), VP8, a keyframe every 30."""
    track = SyntheticVideoTrack(width, height, fps=30)
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.bit_rate = 400_000
    enc.gop_size = 30
    out = []
    for i in range(n):
        image = track.render(i, i / 30)
        frame = av.VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in enc.encode(frame)]
    return out


def opus_packets(n: int) -> list[bytes]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48_000, "stereo", "s16"
    out = []
    for i in range(n):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 960 * 2), np.int16), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48_000, i * 960
        out += [bytes(p) for p in enc.encode(frame)]
    return out


def read_back(path: Path) -> tuple[list[float], list[int], list[float]]:
    video_times, ids, audio_times = [], [], []
    with av.open(str(path)) as c:
        for packet in c.demux():
            if packet.size == 0:
                continue
            for frame in packet.decode():
                if packet.stream.type == "video":
                    video_times.append(float(frame.time))
                    ids.append(read_frame_id(frame))
                else:
                    audio_times.append(float(frame.time))
    return video_times, ids, audio_times


def test_track_timestamps_unwrap_the_rtp_clock_and_survive_a_jump() -> None:
    track = _Track(90_000)
    base = (1 << 32) - 3000  # wraps after the first frame
    assert track.pts(base, 100.0) == 100
    assert track.pts((base + 3000) & 0xFFFFFFFF, 133.0) == 133  # 1/30 s later, past the wrap
    assert track.pts((base + 6000) & 0xFFFFFFFF, 167.0) == 167
    # The publisher restarted its clock: follow arrival time, and never go back.
    assert track.pts(900_000_000, 200.0) == 200
    assert track.pts(900_003_000, 233.0) == 233
    assert track.pts(900_003_000, 240.0) == 234  # a repeated timestamp still moves forward
    assert track.pts(900_006_000, 150.0) == 267  # RTP time, not arrival jitter, spaces frames


def test_vp8_size_reads_the_keyframe_header() -> None:
    frames = vp8_frames(2, 320, 180)
    assert vp8_size(frames[0][0]) == (320, 180)
    assert vp8_size(frames[1][0]) is None  # an inter frame has no size


async def test_remuxed_frames_decode_in_order_from_the_first_keyframe(tmp_path: Path) -> None:
    video, audio = make_source("video", "video/VP8"), make_source("audio", "audio/opus")
    rec = Recorder(tmp_path / "lesson.webm")
    rec.attach("video", video)
    rec.attach("audio", audio)
    frames, packets = vp8_frames(60), opus_packets(100)
    t0 = time.monotonic()
    # A delta frame before any keyframe (joining mid-GOP) is skipped: it would not decode.
    video.push(EncodedFrame(frames[1][0], 0, False, t0))
    for i in range(60):
        data, key = frames[i]
        video.push(EncodedFrame(data, (1000 + i * 3000) & 0xFFFFFFFF, key, t0 + i / 30))
        for j in range(i * 100 // 60, (i + 1) * 100 // 60):
            audio.push(EncodedFrame(packets[j], 500 + j * 960, True, t0 + j / 50))
    rec.close()
    assert video.subscriber_count == 0 and audio.subscriber_count == 0  # detached
    assert rec.stats.video_frames == 60 and rec.media_start_unix is not None
    video_times, ids, audio_times = read_back(tmp_path / "lesson.webm")
    assert len(video_times) == 60
    assert ids == list(range(60))  # no re-encode: each picture is the one that was sent
    assert video_times[0] == 0 and abs(video_times[-1] - 59 / 30) < 0.002
    assert len(audio_times) >= 95 and audio_times[-1] == pytest.approx(99 / 50, abs=0.03)


async def test_a_codec_that_webm_cannot_hold_is_not_attached(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "x.webm")
    h264 = make_source("video", "video/H264")
    rec.attach("video", h264)
    assert h264.subscriber_count == 0
    rec.close()
    assert not (tmp_path / "x.webm").exists()  # nothing to write: no file


def test_too_little_disk_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(DiskSpaceError):
        Recorder(tmp_path / "x.webm", DiskPolicy(min_free_bytes=1 << 62))


async def test_disk_filling_up_warns_then_stops_and_keeps_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = iter([10_000, 1_500, 500])  # at start, then each check: low, then full
    monkeypatch.setattr(recorder_module, "free_bytes", lambda path: next(free, 500))
    notes: list[str] = []
    policy = DiskPolicy(min_free_bytes=1_000, warn_free_bytes=2_000, check_s=0.0)
    rec = Recorder(tmp_path / "lesson.webm", policy, lambda code, detail: notes.append(code))
    video = make_source("video", "video/VP8")
    rec.attach("video", video)
    t0 = time.monotonic()
    for i, (data, key) in enumerate(vp8_frames(30)):
        video.push(EncodedFrame(data, i * 3000, key, t0 + i / 30))
    rec.close()
    assert notes == ["disk_low", "disk_full"] and rec.stopped.is_set()
    video_times, _, _ = read_back(tmp_path / "lesson.webm")
    assert len(video_times) == 2  # written before the disk was full: kept, with a trailer


async def test_finalize_copies_a_cut_short_file(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "lesson.webm")
    video = make_source("video", "video/VP8")
    rec.attach("video", video)
    t0 = time.monotonic()
    for i, (data, key) in enumerate(vp8_frames(45)):
        video.push(EncodedFrame(data, i * 3000, key, t0 + i / 30))
    rec.close()
    whole = (tmp_path / "lesson.webm").read_bytes()
    cut = tmp_path / "cut.webm"
    cut.write_bytes(whole[: len(whole) * 2 // 3])  # a crash mid-write
    duration = finalize(cut, tmp_path / "fixed.webm")
    times, ids, _ = read_back(tmp_path / "fixed.webm")
    assert 0.3 < duration < 1.5 and times[-1] == pytest.approx(duration, abs=0.001)
    assert ids == list(range(len(ids)))
