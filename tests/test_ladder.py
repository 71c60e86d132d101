"""The server-side ladder with real codecs: a single 640x360 VP8 layer in, decodable 180p
frames with the publisher's frame ids out, only while somebody watches."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av

from media.downtrack import DownTrack
from media.frames import EncodedFrame
from media.ladder import Ladder
from media.publication import Publication
from media.source import Source
from media.stats import ForwardStats
from media.synthetic import SyntheticVideoTrack, read_frame_id


def encoded_stream(n: int, keyframes: tuple[int, ...] = ()) -> list[EncodedFrame]:
    """n frames of the synthetic lesson at 640x360, VP8; the first and `keyframes` are keys."""
    art = SyntheticVideoTrack(640, 360, fps=30)
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt, enc.bit_rate = 640, 360, "yuv420p", 800_000
    enc.time_base = Fraction(1, 90_000)
    enc.options = {"deadline": "realtime", "lag-in-frames": "0", "cpu-used": "8"}
    frames = []
    for i in range(n):
        picture = av.VideoFrame.from_ndarray(art.render(1000 + i, i / 30), format="yuv420p")
        picture.pts = i * 3000
        if i in keyframes:
            picture.pict_type = av.video.frame.PictureType.I
        for packet in enc.encode(picture):
            frames.append(EncodedFrame(bytes(packet), i * 3000, packet.is_keyframe, 0.0))
    return frames


async def test_ladder_makes_decodable_lower_layers_only_while_watched():
    stats = ForwardStats()
    plis: list[int] = []

    async def pli() -> None:
        plis.append(1)

    top = Source("t:camera/h", "t", "camera/h", "video", pli, stats)
    top.mime_type = "video/VP8"
    publication = Publication("t", "camera", "video")
    publication.set_layer("h", top)
    assert publication.layer_names() == ["h", "m", "l"]  # server-made m and l
    stream = encoded_stream(40, keyframes=(10, 18))
    for frame in stream[:10]:  # nobody watches the lower layers yet
        top.push(frame)
    ladder: Ladder = publication._ladder  # noqa: SLF001 - the object under test
    assert ladder.frames_encoded == 0

    track = DownTrack("video", stats)
    track.bind(publication)  # starts on the lowest layer: 180p from the ladder
    assert stream[10].keyframe  # what the PLI the ladder just sent would bring

    async def take(n: int) -> list:  # the subscriber's sender, taking frames as they come
        return [await track.recv() for _ in range(n)]

    taken = asyncio.ensure_future(take(10))
    for frame in stream[10:]:
        top.push(frame)
        await asyncio.sleep(1 / 30)  # real time
    async with asyncio.timeout(10):
        while ladder.frames_encoded < 14:
            await asyncio.sleep(0.02)
    assert ladder.frames_encoded <= 16  # the 180p rung runs at 15 fps: every other frame
    # the publisher's second keyframe (frame 18) is not one on the rung: keyframes are costly
    # on a slow link, and the rung's decoder state does not need one
    assert ladder.sources["l"].keyframes == 1
    decoder = av.CodecContext.create("vp8", "r")
    ids = []
    for packet in await asyncio.wait_for(taken, 10):
        for picture in decoder.decode(packet):
            assert (picture.width, picture.height) == (320, 180)
            ids.append(read_frame_id(picture.to_ndarray(format="bgr24")))
    assert sum(i is not None for i in ids) >= 8
    assert [i for i in ids if i is not None] == sorted(i for i in ids if i is not None)

    track.bind(None)  # nobody watches: the ladder stops encoding
    await asyncio.sleep(0.2)
    before = ladder.frames_encoded
    for frame in stream[20:30]:
        top.push(frame)
    await asyncio.sleep(0.3)
    assert ladder.frames_encoded == before

    publication.set_layer("m", Source("t:camera/m", "t", "camera/m", "video", pli, stats))
    assert publication._ladder is None  # a layered publisher needs no ladder
    publication.close()
