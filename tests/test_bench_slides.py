"""The parts of `tongke bench slides` that need no emulated link: the screen-share encoding
and its quality, when a page counts as sharp, and the classroom's prefetch order."""

from __future__ import annotations

import numpy as np

from bench.slides_peer import Classroom
from bench.slides_video import EncodedStream, encode, sharp_times


def page(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.full((180, 320, 3), 240, np.uint8)
    for _ in range(12):  # dark "text" bars
        y, x = rng.integers(10, 170), rng.integers(10, 200)
        img[y : y + 4, x : x + rng.integers(20, 110)] = 20
    return img


def test_encode_scores_every_frame_against_its_page():
    stream = encode({1: page(1), 2: page(2)}, [1, 2], 1.0, 5.0, 200_000)
    assert len(stream.frames) == 10 and stream.pages == [1] * 5 + [2] * 5
    assert all(stream.frames) and stream.capture_s[5] == 1.0
    # a still page gets sharper (or stays sharp) as frames refine it
    assert stream.psnr_db[4] >= 30 and stream.psnr_db[9] >= 30
    assert max(stream.psnr_db[:5]) > 30


def test_sharp_time_is_first_good_frame_of_the_new_page_to_arrive():
    stream = EncodedStream(
        fps=2, frames=[b"x"] * 8, capture_s=[0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5],
        pages=[1, 1, 2, 2, 3, 3, 4, 4], psnr_db=[40, 40, 30, 36, 30, 31, 36, 37],
    )
    start = 100.0
    arrivals = [start + t + 0.3 for t in stream.capture_s]
    arrivals[6] = None  # lost: the next good one counts
    sharp = sharp_times(stream, start, arrivals, [1, 2, 3, 4], 1.0, 35.0)
    assert round(sharp[0], 6) == 0.8  # page 2: its second frame
    assert sharp[1] is None  # page 3 never reached 35 dB
    assert round(sharp[2], 6) == 0.8  # page 4: its first frame was lost, the second counts


def test_prefetch_goes_from_the_current_page_on():
    room = Classroom("http://x", prefetch=True)
    room.deck, room.page = {"id": "d", "count": 5, "url": "/d/{page}.webp"}, 4
    room.cache = {4: b"", 1: b""}
    assert room._next_to_fetch() == 5
    room.cache[5] = b""
    assert room._next_to_fetch() == 2
