"""The headless client against a real server on loopback: publish, subscribe, renegotiation
when the teacher calls on a class, the CLI's run_publish / run_watch, and refusals."""

from __future__ import annotations

import asyncio
import fractions
import json
from pathlib import Path

import av
import pytest

from media.synthetic import SyntheticVideoTrack, ToneAudioTrack, read_frame_id
from server.client import (
    Participant,
    RemoteTrack,
    SignallingError,
    is_loopback,
    open_source,
    run_publish,
    run_watch,
    ws_url,
)


def lesson_tracks(**kw) -> dict:
    # small frames: every test here shares two cores with the server and the other peers
    return {"camera": SyntheticVideoTrack(320, 180, **kw), "mic": ToneAudioTrack()}


async def joined(url: str, token: str, **kw) -> Participant:
    participant = Participant(**kw)
    await participant.connect(url, token)
    await participant.join()
    return participant


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_ws_url_and_loopback():
    assert ws_url("http://127.0.0.1:8080", "t") == "ws://127.0.0.1:8080/ws?token=t"
    assert ws_url("https://tk.example.cn/", "a.b") == "wss://tk.example.cn/ws?token=a.b"
    assert ws_url("ws://h:1/ws", "t") == "ws://h:1/ws?token=t"
    assert is_loopback("http://127.0.0.1:1") and is_loopback("http://localhost:1")
    assert is_loopback("ws://[::1]:1/ws") and not is_loopback("https://10.0.0.2")


async def test_classroom_receives_the_teachers_tracks_decoded(server_url, mint):
    teacher = await joined(server_url, mint("lesson", "teacher", "王老师"))
    cls = await joined(server_url, mint("lesson", "classroom", "七(1)班"))
    try:
        added: list[RemoteTrack] = []
        cls.on_track.append(added.append)
        await teacher.publish(lesson_tracks())
        camera = await cls.wait_track("camera", timeout=10)
        mic = await cls.wait_track("mic", participant=teacher.you["id"], timeout=10)
        assert camera.participant == teacher.you["id"]
        assert (camera.name, camera.role, camera.kind) == ("王老师", "teacher", "video")
        assert mic.kind == "audio" and {r.key for r in added} >= {camera.key, mic.key}
        assert cls.participants[teacher.you["id"]]["name"] == "王老师"
        ids = []
        async with asyncio.timeout(15):
            while len(ids) < 20:
                frame = await camera.track.recv()  # stock aiortc: decoded frames
                if (frame_id := read_frame_id(frame)) is not None:
                    ids.append(frame_id)
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        sound = await mic.track.recv()
        assert sound.sample_rate == 48000
    finally:
        await cls.close()
        await teacher.close()


async def test_call_on_renegotiates_a_classes_uplink(server_url, mint):
    teacher = await joined(server_url, mint("lesson", "teacher", "王老师"))
    speaker = await joined(server_url, mint("lesson", "classroom", "七(2)班"))
    other = await joined(server_url, mint("lesson", "classroom", "七(3)班", participant_id="c3"))
    removed: list[RemoteTrack] = []
    other.on_track_removed.append(removed.append)
    try:
        await speaker.publish({"camera": SyntheticVideoTrack(160, 90)})
        # the teacher sees every class; other classes only the one called on
        await teacher.wait_track("camera", participant=speaker.you["id"])
        await asyncio.sleep(0.5)
        assert (speaker.you["id"], "camera") not in other.remote
        await teacher.send({"type": "call_on", "participant": speaker.you["id"]})
        uplink = await other.wait_track("camera", participant=speaker.you["id"])
        assert other.state["called_on"] == speaker.you["id"]
        assert uplink.name == "七(2)班"
        await teacher.send({"type": "call_on", "participant": None})
        async with asyncio.timeout(10):
            while not removed:
                await asyncio.sleep(0.05)
        assert removed[0].key == uplink.key and uplink.key not in other.remote
    finally:
        for p in (other, speaker, teacher):
            await p.close()


async def test_run_watch_reports_rates_ids_and_delay(server_url, mint, capsys):
    camera = SyntheticVideoTrack(320, 180)
    teacher = await joined(server_url, mint("lesson", "teacher", "王老师"))
    try:
        await teacher.publish({"camera": camera, "mic": ToneAudioTrack()})
        token = mint("lesson", "classroom", "七(1)班")
        summary = await run_watch(server_url, token, 5.0, send_log=camera.send_log)
    finally:
        await teacher.close()
    lines = json_lines(capsys.readouterr().out)
    assert lines[0]["event"] == "joined" and lines[-1] == summary
    intervals = [x for x in lines if "t" in x and x["source"] == "camera"]
    assert len(intervals) >= 4
    tracks = {t["source"]: t for t in summary["tracks"]}
    video, audio = tracks["camera"], tracks["mic"]
    assert video["first_frame_s"] < 2.0, video
    assert video["fps"] > 15 and video["keyframes"] >= 1 and video["kbps"] > 20
    assert video["ids"]["read"] >= 0.9 * video["frames"]
    assert video["ids"]["gaps"] <= 0.1 * video["ids"]["read"]
    assert 0 < video["delay_ms"]["p50"] < 500
    assert audio["fps"] > 40 and "ids" not in audio
    steady = [x for x in intervals if x["t"] >= 3]
    assert all(x["frames"] > 0 for x in steady)


async def test_run_watch_without_decoding_still_counts(server_url, mint, capsys):
    teacher = await joined(server_url, mint("lesson", "teacher", "王老师"))
    try:
        await teacher.publish(lesson_tracks())
        summary = await run_watch(
            server_url, mint("lesson", "observer", "巡课"), 3.0, report_every=0.5, decode=False
        )
    finally:
        await teacher.close()
    video = next(t for t in summary["tracks"] if t["kind"] == "video")
    assert video["frames"] > 30 and "ids" not in video
    assert video["intervals"] >= 5


async def test_run_publish_synthetic(server_url, mint, capsys):
    token = mint("lesson", "teacher", "王老师")
    publishing = asyncio.ensure_future(run_publish(server_url, token, "synthetic", 5.0))
    cls = await joined(server_url, mint("lesson", "classroom", "七(1)班"))
    try:
        camera = await cls.wait_track("camera", timeout=10)
        async with asyncio.timeout(15):
            while read_frame_id(await camera.track.recv()) is None:
                pass
        summary = await publishing
    finally:
        publishing.cancel()
        await cls.close()
    lines = json_lines(capsys.readouterr().out)
    assert [x["event"] for x in lines if "event" in x] == ["joined", "published", "summary"]
    assert summary["sent"]["camera"]["packets"] > 50 and summary["sent"]["mic"]["packets"] > 100
    assert summary["ended"] is None


def write_lesson_file(path: Path, seconds: float = 2.0) -> None:
    """A short WebM of the synthetic source, as a recorded lesson would be."""
    track = SyntheticVideoTrack(320, 180)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.bit_rate = 400_000
        for n in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(track.render(n, n / 30), format="yuv420p")
            frame.pts, frame.time_base = n, fractions.Fraction(1, 30)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


async def test_run_publish_a_file(server_url, mint, tmp_path, capsys):
    lesson = tmp_path / "lesson.webm"
    write_lesson_file(lesson)
    tracks, stop = open_source(str(lesson))
    stop()
    assert set(tracks) == {"camera"}
    summary = await asyncio.gather(
        run_publish(server_url, mint("lesson", "teacher", "王老师"), str(lesson), 4.0),
        run_watch(server_url, mint("lesson", "classroom", "七(1)班"), 4.0),
    )
    video = summary[1]["tracks"][0]
    assert video["source"] == "camera" and video["frames"] > 30
    assert video["ids"]["read"] > 30  # the file's own frame ids, re-encoded by the publisher


def test_unknown_source_is_refused():
    with pytest.raises(ValueError):
        open_source("/nonexistent/lesson.mp4")


async def test_refusals_raise_signalling_errors(server_url, mint):
    observer = await joined(server_url, mint("lesson", "teacher", "王老师"))
    watcher = await joined(server_url, mint("lesson", "observer", "巡课"))
    try:
        with pytest.raises(SignallingError) as refused:
            await watcher.publish({"camera": SyntheticVideoTrack(160, 90)})
        assert refused.value.code == "not_allowed" and refused.value.message
        assert watcher.closed.is_set() is False  # a refusal does not end the session
    finally:
        await watcher.close()
        await observer.close()
    forged = Participant()
    await forged.connect(server_url, "eyJhbGciOiJIUzI1NiJ9.e30.forged")
    with pytest.raises(SignallingError) as bad:
        await forged.join()
    assert bad.value.code == "bad_token"
    await forged.close()


class LateCamera(SyntheticVideoTrack):
    """A camera whose first frame comes only after `delay` seconds (a slow capture device)."""

    def __init__(self, delay: float) -> None:
        super().__init__(160, 90)
        self.delay = delay

    async def recv(self) -> av.VideoFrame:
        if self.delay:
            await asyncio.sleep(self.delay)
            self.delay = 0
        return await super().recv()


@pytest.mark.parametrize("watchdog", [True, False])
async def test_keyframe_watchdog_asks_only_for_silent_video(server_url, mint, watchdog):
    teacher = await joined(server_url, mint("lesson", "teacher", "王老师"))
    cls = await joined(
        server_url, mint("lesson", "classroom", "七(1)班"), keyframe_watchdog=watchdog
    )
    try:
        await teacher.publish({"camera": LateCamera(2.5), "mic": ToneAudioTrack()})
        camera = await cls.wait_track("camera")
        await asyncio.sleep(2.0)  # bound, but nothing to send yet
        assert cls.keyframe_requests >= (1 if watchdog else 0)
        assert watchdog or cls.keyframe_requests == 0
        async with asyncio.timeout(10):
            while read_frame_id(await camera.track.recv()) is None:
                pass
        settled = cls.keyframe_requests
        await asyncio.sleep(2.0)  # video flows: no more requests
        assert cls.keyframe_requests == settled
    finally:
        await cls.close()
        await teacher.close()
