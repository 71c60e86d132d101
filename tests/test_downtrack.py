"""DownTrack and Source: keyframe gating, timestamp continuity, overflow, PLI throttling."""

import asyncio
import time

from media import source as source_module
from media.downtrack import MAX_QUEUED_FRAMES, STALE_S, DownTrack
from media.frames import EncodedFrame
from media.publication import Publication
from media.source import Source
from media.stats import ForwardStats


def make_source(stats: ForwardStats, plis: list[int], name: str = "camera") -> Source:
    async def send_pli() -> None:
        plis.append(1)

    return Source(f"p:{name}", "p", name, "video", send_pli, stats)


def frame(ts: int, key: bool = False, at: float = 0.0) -> EncodedFrame:
    """A frame that arrived `at` seconds from now."""
    return EncodedFrame(b"\x00k" if key else b"\x01d", ts, key, time.monotonic() + at)


def publish(*layers: Source) -> Publication:
    pub = Publication("p", layers[0].name, "video")
    for name, source in zip("hml", layers, strict=False):
        pub.set_layer(name, source)
    return pub


async def test_video_starts_at_keyframe_and_timestamps_continue_across_sources():
    stats, plis = ForwardStats(), []
    a, b = make_source(stats, plis, "camera"), make_source(stats, plis, "screen")
    track = DownTrack("video", stats)
    track.bind(publish(a))
    a.push(frame(1000))  # not decodable alone: dropped
    a.push(frame(4000, key=True))
    a.push(frame(7000))
    first, second = await track.recv(), await track.recv()
    assert (first.pts, second.pts) == (0, 3000)
    track.bind(publish(b))
    b.push(frame(900_000, key=True))
    third = await track.recv()
    assert third.pts == 6000  # one frame step after the last, whatever b's clock says
    assert bytes(third) == b"\x00k"


async def test_layer_switch_waits_for_the_new_layer_keyframe_and_keeps_time():
    stats, plis = ForwardStats(), []
    high, low = make_source(stats, plis, "camera"), make_source(stats, plis, "camera")
    track = DownTrack("video", stats)
    track.bind(publish(high, low))  # starts on the lowest layer
    low.push(frame(10, key=True, at=0.0))
    assert track.current_layer == 1
    track.set_layer(0)
    high.push(frame(5000, at=0.033))  # not a switch point: ignored
    low.push(frame(3010, at=0.033))  # still forwarded meanwhile
    assert track.current_layer == 1
    high.push(frame(8000, key=True, at=0.5))  # the switch point
    low.push(frame(6010, at=0.5))  # the old layer is no longer forwarded
    assert track.current_layer == 0
    pts = [(await track.recv()).pts for _ in range(3)]
    assert pts[:2] == [0, 3000]
    assert pts[2] == 3000 + round(0.467 * 90_000)  # the real time that passed
    assert low.subscriber_count == 0 and high.subscriber_count == 1


async def test_overflow_restarts_at_keyframe_and_requests_one():
    stats, plis = ForwardStats(), []
    src = make_source(stats, plis)
    track = DownTrack("video", stats)
    track.bind(publish(src))
    await asyncio.sleep(0)  # let the bind's PLI go out
    src.push(frame(0, key=True))
    for i in range(MAX_QUEUED_FRAMES["video"]):
        src.push(frame(3000 * (i + 1)))
    assert stats.frames_dropped == MAX_QUEUED_FRAMES["video"]
    src.push(frame(999_000))  # still waiting for a keyframe
    src.push(frame(1_002_000, key=True))
    packet = await track.recv()
    assert bytes(packet) == b"\x00k"
    assert stats.keyframe_requests >= 2


async def test_keyframe_requests_coalesce_into_one_pli_per_interval(monkeypatch):
    monkeypatch.setattr(source_module, "PLI_MIN_INTERVAL", 0.2)
    stats, plis = ForwardStats(), []
    src = make_source(stats, plis)
    for _ in range(20):  # twenty classrooms lose a picture at once
        src.request_keyframe()
    await asyncio.sleep(0.05)
    assert len(plis) == 1
    await asyncio.sleep(0.3)
    assert len(plis) == 2  # the requests made while throttled are served once, later
    src.close()


async def test_pending_request_dropped_when_keyframe_arrives():
    stats, plis = ForwardStats(), []
    src = make_source(stats, plis)
    src.request_keyframe()
    src.request_keyframe()
    await asyncio.sleep(0)
    src.push(frame(0, key=True))
    await asyncio.sleep(source_module.PLI_MIN_INTERVAL + 0.1)
    assert len(plis) == 1


async def test_a_backlog_the_sender_never_took_is_dropped_and_video_restarts_at_a_keyframe():
    """aiortc starts sending only once DTLS is up: the frames queued meanwhile, paced out at
    once, overflowed a rural link's queue at every join."""
    stats, plis = ForwardStats(), []
    cam = make_source(stats, plis)
    track = DownTrack("video", stats)
    track.bind(publish(cam))
    cam.push(frame(1000, key=True))
    cam.push(frame(4000))
    cam.push(frame(7000))
    await asyncio.sleep(STALE_S + 0.05)  # no sender took them
    asked = stats.keyframe_requests
    waiting = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    assert not waiting.done()  # the stale frames were not sent ...
    assert stats.keyframe_requests > asked  # ... a fresh keyframe was asked for
    cam.push(frame(10000))  # not decodable without its keyframe: skipped
    cam.push(frame(13000, key=True))
    packet = await asyncio.wait_for(waiting, 1)
    assert bytes(packet) == b"\x00k"
    assert stats.frames_dropped == 3


async def test_stale_audio_is_dropped_packet_by_packet():
    stats = ForwardStats()
    mic = Source("p:mic", "p", "mic", "audio", None, stats)
    pub = Publication("p", "mic", "audio")
    pub.set_layer("h", mic)
    track = DownTrack("audio", stats)
    track.bind(pub)
    mic.push(EncodedFrame(b"old", 0, True, time.monotonic()))
    await asyncio.sleep(STALE_S + 0.05)
    mic.push(EncodedFrame(b"new", 960, True, time.monotonic()))
    packet = await asyncio.wait_for(track.recv(), 1)
    assert bytes(packet) == b"new"
