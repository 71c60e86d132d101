"""Synthetic lesson sources: the frame id code survives VP8 and downscaling; tracks are paced
and stamped like aiortc's own. Generation speed is a benchmark, not asserted here."""

from __future__ import annotations

import fractions
import time

import av
import cv2
import numpy as np
import pytest

from media.synthetic import (
    SendLog,
    SyntheticVideoTrack,
    ToneAudioTrack,
    code_box,
    read_frame_id,
)


def vp8_encoder(width: int, height: int, kbps: int) -> av.CodecContext:
    """libvpx set up as aiortc's Vp8Encoder does (CBR, realtime), at a low bitrate."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = kbps * 1000
    codec.time_base = fractions.Fraction(1, 30)
    codec.gop_size, codec.qmin, codec.qmax = 3000, 2, 56
    rate = str(kbps * 1000)
    codec.options = {
        "bufsize": rate,
        "minrate": rate,
        "maxrate": rate,
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "noise-sensitivity": "4",
        "static-thresh": "1",
        "undershoot-pct": "100",
        "overshoot-pct": "15",
    }
    return codec


@pytest.mark.parametrize(
    "encode_size, kbps",
    [
        ((1280, 720), 300),  # the teacher's 720p squeezed, then shown small
        ((320, 180), 100),  # a 180p layer on a rural link
    ],
)
def test_frame_ids_survive_vp8_and_320x180(encode_size, kbps):
    width, height = encode_size
    start = 0xFFFFFFF0  # crosses the 32-bit wrap and exercises the high bits
    track = SyntheticVideoTrack(page_seconds=1.0, start_id=start)
    encoder = vp8_encoder(width, height, kbps)
    decoder = av.CodecContext.create("libvpx", "r")
    sent: list[int] = []
    read: list[int | None] = []
    nbytes = 0
    for n in range(90):  # 3 s, two page changes
        frame_id = (start + n) & 0xFFFFFFFF
        frame = av.VideoFrame.from_ndarray(track.render(frame_id, n / 30), format="yuv420p")
        frame.pts = n
        if (width, height) != (1280, 720):
            frame = frame.reformat(width=width, height=height, interpolation="AREA")
        sent.append(frame_id)
        for packet in encoder.encode(frame):
            nbytes += packet.size
            for decoded in decoder.decode(packet):
                shown = cv2.resize(
                    decoded.to_ndarray(format="bgr24"), (320, 180), interpolation=cv2.INTER_AREA
                )
                read.append(read_frame_id(shown))
    assert nbytes * 8 / 3 < 2.5 * kbps * 1000  # the encoder really was starved
    assert len(read) == len(sent)
    wrong = [(s, r) for s, r in zip(sent, read, strict=True) if r is not None and r != s]
    assert not wrong  # the CRC turns a damaged code into None, never into another id
    assert sum(r is not None for r in read) >= 0.95 * len(sent)


@pytest.mark.parametrize("frame_id", [0, 1, 0x12345678, 0xDEADBEEF, 0xFFFFFFFF])
def test_read_frame_id_accepts_frames_and_arrays(frame_id):
    track = SyntheticVideoTrack(640, 360)
    frame = av.VideoFrame.from_ndarray(track.render(frame_id, 2.5), format="yuv420p")
    assert read_frame_id(frame) == frame_id
    assert read_frame_id(frame.to_ndarray(format="bgr24")) == frame_id
    assert read_frame_id(frame.to_ndarray(format="yuv420p")) == frame_id  # Y plane on top
    assert read_frame_id(frame.to_ndarray(format="gray")) == frame_id
    rgba = frame.to_ndarray(format="rgba")  # e.g. a canvas grab from a page
    assert read_frame_id(rgba) == frame_id
    small = frame.reformat(width=160, height=90, interpolation="AREA")
    assert read_frame_id(small) == frame_id


def test_read_frame_id_rejects_frames_without_a_code():
    rng = np.random.default_rng(3)
    assert read_frame_id(np.zeros((360, 640, 3), np.uint8)) is None
    assert read_frame_id(np.full((360, 640), 255, np.uint8)) is None
    assert read_frame_id(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8)) is None
    assert read_frame_id(np.zeros((4, 8), np.uint8)) is None  # too small to hold one
    # a code with one data cell flipped fails its CRC
    track = SyntheticVideoTrack(640, 360)
    y = track.render(0x0F0F0F0F, 0.0)[:360].copy()
    cell = 640 / 48
    lo, hi = round(3 * cell), round(4 * cell)  # data row 2, column 2 (after the quiet zone)
    y[lo:hi, lo:hi] = 255 - y[lo:hi, lo:hi]
    assert read_frame_id(y) is None


def test_code_stays_in_its_corner():
    width, height = code_box(1280)
    assert width < 1280 * 0.25 and height < 720 * 0.35


def test_render_moves_and_turns_slide_pages():
    track = SyntheticVideoTrack(640, 360, page_seconds=2.0)
    a = track.render(0, 0.0).copy()
    b = track.render(1, 1 / 30).copy()
    c = track.render(60, 2.0).copy()
    cam = slice(0, track._cam_w)
    slide = slice(track._cam_w, 640)
    assert np.mean(a[:360, cam] != b[:360, cam]) > 0.3  # camera: motion and noise
    assert np.array_equal(a[:360, slide], b[:360, slide])  # slide: static within a page
    assert np.mean(a[:360, slide] != c[:360, slide]) > 0.02  # next page
    assert track.page == 1


async def test_video_track_stamps_paces_and_logs():
    seen: list[tuple[int, float]] = []
    log = SendLog(maxlen=5)
    track = SyntheticVideoTrack(
        320, 180, fps=30, start_id=7, on_frame=lambda i, t: seen.append((i, t)), send_log=log
    )
    t0 = time.monotonic()
    frames = [await track.recv() for _ in range(10)]
    elapsed = time.monotonic() - t0
    assert elapsed >= 9 / 30 - 0.02  # real-time pacing (a lower bound only: never faster)
    assert [f.pts for f in frames] == [3000 * n for n in range(10)]
    assert all(f.time_base == fractions.Fraction(1, 90000) for f in frames)
    assert (frames[0].width, frames[0].height, frames[0].format.name) == (320, 180, "yuv420p")
    assert [read_frame_id(f) for f in frames] == list(range(7, 17))
    assert [i for i, _ in seen] == list(range(7, 17))
    assert sorted(log.times) == list(range(12, 17))  # bounded to the newest 5
    assert log.get(16) == seen[-1][1]
    track.stop()


async def test_tone_track_is_continuous_20ms_s16():
    track = ToneAudioTrack(freq=440, sample_rate=48000, volume=0.5)
    frames = [await track.recv() for _ in range(60)]  # 1.2 s: crosses the table's 1 s loop
    assert all(f.samples == 960 and f.sample_rate == 48000 for f in frames)
    assert all(f.format.name == "s16" and f.layout.name == "mono" for f in frames)
    assert [f.pts for f in frames] == [960 * n for n in range(60)]
    assert frames[0].time_base == fractions.Fraction(1, 48000)
    samples = np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float64)
    n = np.arange(len(samples))
    ideal = 0.5 * 32767 * np.sin(2 * np.pi * 440 * n / 48000)
    assert np.max(np.abs(samples - ideal)) <= 1.0  # no click at frame or loop boundaries
    track.stop()
