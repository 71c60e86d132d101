"""A lesson end to end through the real server with real aiortc peers on loopback:
forwarding without decoding, keyframe requests, late join, call-on, reload, drop-outs."""

from __future__ import annotations

import asyncio
import time

import aiortc.rtcrtpreceiver
import pytest

from media.synthetic import SyntheticVideoTrack, ToneAudioTrack, read_frame_id
from server.client import Participant, RemoteTrack

ROOM = "yandi-g7-math"


class FrameCounter:
    """Reads a decoded track in the background: frames, frame ids, first-frame time."""

    def __init__(self, remote: RemoteTrack) -> None:
        self.frames = 0
        self.ids: list[int] = []
        self.first_at: float | None = None
        self._task = asyncio.ensure_future(self._read(remote))

    async def _read(self, remote: RemoteTrack) -> None:
        while True:
            frame = await remote.track.recv()
            self.frames += 1
            if self.first_at is None:
                self.first_at = time.monotonic()
            if remote.kind == "video" and self.frames % 5 == 0:
                frame_id = read_frame_id(frame.to_ndarray(format="bgr24"))
                if frame_id is not None:
                    self.ids.append(frame_id)

    def stop(self) -> None:
        self._task.cancel()


async def teacher(server, **kw) -> Participant:
    p = Participant(**kw)
    await p.connect(server.url, server.mint(ROOM, "teacher", "王老师", participant_id="t"))
    await p.join()
    await p.publish({"camera": SyntheticVideoTrack(320, 180, fps=30), "mic": ToneAudioTrack()})
    return p


async def classroom(server, name: str, pid: str | None = None, **kw) -> Participant:
    p = Participant(**kw)
    await p.connect(server.url, server.mint(ROOM, "classroom", name, participant_id=pid))
    await p.join()
    return p


@pytest.fixture
def decoder_calls(monkeypatch) -> list[str]:
    """Every decoder aiortc creates in this process, by codec."""
    calls: list[str] = []
    real = aiortc.rtcrtpreceiver.get_decoder

    def counting(codec):
        calls.append(codec.mimeType)
        return real(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting)
    return calls


async def test_three_classrooms_see_and_hear_the_teacher_and_the_sfu_never_decodes(
    server, decoder_calls
):
    t = await teacher(server)
    classes = [await classroom(server, f"成员校{i}七(1)班") for i in range(3)]
    counters = []
    for c in classes:
        counters.append(FrameCounter(await c.wait_track("camera", "t")))
        counters.append(FrameCounter(await c.wait_track("mic", "t")))
    await asyncio.sleep(4)
    for counter in counters:
        counter.stop()
    video, audio = counters[0::2], counters[1::2]
    assert all(c.frames >= 45 for c in video), [c.frames for c in video]  # ~30 fps
    assert all(c.frames >= 80 for c in audio), [c.frames for c in audio]  # 50 packets/s
    for c in video:  # the real picture: frame ids drawn by the publisher, in order
        assert len(c.ids) >= 5 and c.ids == sorted(c.ids)
    # Six decoders, all in the classrooms (3 x video + audio); none for the server's receivers.
    assert len(decoder_calls) == 6
    stats = server.stats.snapshot()
    assert stats["frames_out"] >= 3 * (45 + 80)
    # A sanity bound (a frame held back for half a second is a bug), not a speed goal: the
    # fan-out benchmark measures the added latency (p99 7.5-9 ms on this machine).
    assert stats["latency_ms_p99"] is not None and stats["latency_ms_p99"] < 500
    for p in [t, *classes]:
        await p.close()


async def test_late_joiner_gets_a_picture_fast_through_one_pli(server):
    t = await teacher(server)
    await asyncio.sleep(3)  # the lesson is under way; aiortc's encoder sends no periodic keyframes
    source = server.rooms.get(ROOM).participants["t"].publications["camera"].layers[0]
    before = source.keyframes
    joined_at = time.monotonic()
    late = await classroom(server, "迟到班")
    counter = FrameCounter(await late.wait_track("camera", "t"))
    async with asyncio.timeout(3):
        while counter.first_at is None:
            await asyncio.sleep(0.02)
    assert counter.first_at - joined_at < 2.0
    assert source.keyframes > before
    counter.stop()
    await late.close()
    await t.close()


async def test_subscriber_keyframe_requests_become_few_plis_upstream(server):
    t = await teacher(server)
    watchers = [await classroom(server, f"班{i}", encoded=True) for i in range(3)]
    keyframes: list[float] = []
    remotes = []
    for w in watchers:
        remotes.append(await w.wait_track("camera", "t"))
    watchers[0].on_encoded_frame.append(
        lambda remote, frame: frame.keyframe and keyframes.append(time.monotonic())
    )
    await asyncio.sleep(1.5)
    stats_before = server.stats.snapshot()
    count_before = len(keyframes)
    for _ in range(5):  # every class asks, five times over, within a few milliseconds
        for w, r in zip(watchers, remotes, strict=True):
            await w.request_keyframe(r)
    await asyncio.sleep(1.5)
    stats_after = server.stats.snapshot()
    assert len(keyframes) > count_before  # a fresh picture came
    plis = stats_after["plis_sent"] - stats_before["plis_sent"]
    assert 1 <= plis <= 2  # fifteen requests, coalesced (one now, one when the interval ends)
    for p in [t, *watchers]:
        await p.close()


async def test_call_on_puts_one_class_uplink_to_everyone(server):
    t = await teacher(server)
    a = await classroom(server, "烈山湖学校七(1)班", "a")
    await a.publish({"camera": SyntheticVideoTrack(320, 180, fps=15), "mic": ToneAudioTrack()})
    b = await classroom(server, "厉山镇中心学校七(1)班", "b")
    await t.wait_track("camera", "a")  # the teacher sees every class
    await b.wait_track("camera", "t")
    assert ("a", "camera") not in b.remote
    await t.send({"type": "call_on", "participant": "a"})
    uplink = await b.wait_track("camera", "a")
    counter = FrameCounter(uplink)
    async with asyncio.timeout(5):
        while counter.frames < 5:
            await asyncio.sleep(0.05)
    counter.stop()
    await t.send({"type": "call_on", "participant": None})
    async with asyncio.timeout(5):
        while ("a", "camera") in b.remote:
            await asyncio.sleep(0.05)
    for p in (t, a, b):
        await p.close()


async def test_reload_is_back_to_live_video_within_five_seconds(server):
    t = await teacher(server)
    first = await classroom(server, "七(1)班", "c1")
    counter = FrameCounter(await first.wait_track("camera", "t"))
    async with asyncio.timeout(5):
        while counter.frames < 10:
            await asyncio.sleep(0.05)
    counter.stop()
    await first.close()
    reloaded_at = time.monotonic()
    second = await classroom(server, "七(1)班", "c1")
    counter = FrameCounter(await second.wait_track("camera", "t"))
    async with asyncio.timeout(5):
        while counter.first_at is None:
            await asyncio.sleep(0.02)
    assert counter.first_at - reloaded_at < 5.0
    counter.stop()
    for p in (t, second):
        await p.close()


async def test_a_class_dropping_out_does_not_disturb_the_others(server):
    t = await teacher(server)
    stay = await classroom(server, "留下班", encoded=True)
    gone = await classroom(server, "掉线班", encoded=True)
    frames: list[int] = []
    stay.on_encoded_frame.append(lambda remote, frame: frames.append(1))
    await stay.wait_track("camera", "t")
    await gone.wait_track("camera", "t")
    # vanish without a goodbye: close the peer connections and drop the socket
    for pc in (gone.subscribe_pc, gone.publish_pc):
        if pc is not None:
            await pc.close()
    await gone._ws.close()
    await asyncio.sleep(0.5)
    mark = len(frames)
    await asyncio.sleep(2)
    assert len(frames) - mark >= 2 * (30 + 50) * 0.8  # video + audio kept flowing
    async with asyncio.timeout(5):
        while len(server.rooms.get(ROOM).participants) != 2:
            await asyncio.sleep(0.05)
    await gone.close()
    for p in (t, stay):
        await p.close()
