"""Replay: a lesson recorded through the real server (aiortc teacher, recording switched on over
HTTP, slide events written as the slides module does), then the library and player in Chromium:
the video plays, and at each moment the page shown is the one the slide events say. Also who
may switch recording on, watch and comment."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from media.synthetic import SyntheticVideoTrack, ToneAudioTrack
from server.client import Participant
from tests.chromium import chromium

ROOM = "yandi-g7-math"  # the sample consortium's lesson: 七年级数学


def expected_page(events: list[dict[str, Any]], unix: float) -> str:
    page = ""
    for e in events:
        if e["t"] <= unix and e["type"] in ("deck", "page"):
            page = str(e.get("page", 1))
    return page


@pytest.fixture
async def recorded(server) -> dict[str, Any]:
    """A 7-second recorded lesson with a deck and two page turns; returns its detail."""
    teacher_token = server.mint(ROOM, "teacher", "王老师", participant_id="t", campus="yandi")
    teacher = Participant()
    events_file = server.settings.data_dir / "lessons" / ROOM / "slide-events.jsonl"
    events_file.parent.mkdir(parents=True)
    api = f"{server.url}/api/recording/{ROOM}"
    try:
        await teacher.connect(server.url, teacher_token)
        await teacher.join()
        await teacher.publish({"camera": SyntheticVideoTrack(320, 180), "mic": ToneAudioTrack()})
        async with aiohttp.ClientSession() as http:
            classroom = server.mint(ROOM, "classroom", "烈山湖学校七(1)班")
            async with http.post(f"{api}/start", params={"token": classroom}) as r:
                assert r.status == 403  # a classroom cannot switch recording on
            async with http.post(f"{api}/start", params={"token": teacher_token}) as r:
                assert r.status == 200, await r.text()
                started = await r.json()
            assert started["subject"] == "数学" and started["grade"] == "七年级"
            with events_file.open("a") as f:
                for delay, event in (
                    (0.5, {"type": "deck", "deck": "d1", "pages": ["/static/none-1.png"] * 3}),
                    (2.5, {"type": "page", "page": 2}),
                    (2.5, {"type": "page", "page": 3}),
                    (0.2, {"type": "ink", "points": [[0.1, 0.1], [0.5, 0.5]]}),
                ):
                    await asyncio.sleep(delay)
                    f.write(json.dumps({"t": time.time(), **event}) + "\n")
                    f.flush()
            await asyncio.sleep(1.5)
            async with http.post(f"{api}/stop", params={"token": teacher_token}) as r:
                assert r.status == 200
                meta = await r.json()
            async with http.get(
                f"{server.url}/api/recordings/{meta['id']}", params={"token": teacher_token}
            ) as r:
                return {**await r.json(), "token": teacher_token}
    finally:
        await teacher.close()


async def test_recording_kept_with_slide_events_then_access_and_comments_by_role(
    server, recorded
) -> None:
    assert recorded["state"] == "done" and recorded["teacher"] == "王老师"
    assert 5.0 < recorded["duration"] < 9.0
    assert [e["type"] for e in recorded["slide_events"]] == ["deck", "page", "page", "ink"]
    assert recorded["media_start"] >= recorded["started_at"]
    rec_id = recorded["id"]
    other_class = server.mint("other-room", "classroom", "别的班")
    own_class = server.mint(ROOM, "classroom", "烈山湖学校七(1)班")
    staff = server.mint("*", "observer", "教务")
    base = f"{server.url}/api/recordings"
    async with aiohttp.ClientSession() as http:

        async def get(path: str, token: str, **query: str) -> tuple[int, Any]:
            async with http.get(f"{base}{path}", params={"token": token, **query}) as r:
                return r.status, await r.json() if r.content_type == "application/json" else None

        assert len((await get("", staff, subject="数学", grade="七年级"))[1]) == 1
        assert (await get("", staff, subject="英语"))[1] == []
        assert (await get("", staff, teacher="李"))[1] == []
        assert len((await get("", staff, date=recorded_day(recorded)))[1]) == 1
        assert (await get("", other_class))[1] == []  # a class sees its own room's only
        assert len((await get("", own_class))[1]) == 1
        assert (await get(f"/{rec_id}/media", other_class))[0] == 403
        assert (await get("/../secret", staff))[0] == 404
        assert (await get("", "forged"))[0] == 401
        async with http.get(
            f"{base}/{rec_id}/media", params={"token": own_class}, headers={"Range": "bytes=0-99"}
        ) as r:
            assert r.status == 206 and len(await r.read()) == 100  # the player can seek

        async def post(token: str, body: Any) -> tuple[int, dict[str, Any]]:
            async with http.post(
                f"{base}/{rec_id}/comments", params={"token": token}, json=body
            ) as r:
                return r.status, await r.json()

        assert (await post(own_class, {"t": 1.0, "text": "好"}))[0] == 403
        status, err = await post(staff, {"t": 999.0, "text": "太晚了"})
        assert status == 400 and err["message"]
        assert (await post(staff, {"t": 1.0, "text": ""}))[0] == 400
        status, made = await post(staff, {"t": 2.5, "text": "导入自然，板书清楚。"})
        assert status == 201 and made["author"] == "教务"
        assert [c["text"] for c in (await get(f"/{rec_id}/comments", own_class))[1]] == [
            "导入自然，板书清楚。"
        ]


def recorded_day(recorded: dict[str, Any]) -> str:
    return time.strftime("%Y-%m-%d", time.localtime(recorded["started_at"]))


async def test_replay_page_plays_and_shows_the_page_of_each_moment(server, recorded) -> None:
    token = recorded["token"]
    events = recorded["slide_events"]
    start = recorded["media_start"]
    async with chromium() as browser:
        page = await browser.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(str(e)))
        await page.goto(f"{server.url}/replay?token={token}")
        await page.select_option("select[name=subject]", "数学")
        await page.fill("input[name=teacher]", "王")
        await page.click("#search button")
        await page.wait_for_selector(f"tr[data-id='{recorded['id']}'] a.watch")
        await page.click(f"tr[data-id='{recorded['id']}'] a.watch")
        await page.wait_for_function("window.tongkeReplay !== undefined")
        await page.wait_for_function("document.querySelector('#video').readyState >= 1")
        assert await page.evaluate("document.querySelector('#video').videoWidth") == 320
        await page.evaluate("document.querySelector('#video').play()")
        await page.wait_for_function("document.querySelector('#video').currentTime > 1.0")
        # Moments before the deck, on each page, and between the turns.
        deck_at, turn2, turn3 = (e["t"] - start for e in events[:3])
        for at in (deck_at - 0.3, deck_at + 0.3, turn2 - 0.3, turn2 + 0.3, turn3 + 0.3):
            if at < 0:
                continue
            await page.evaluate(
                """at => new Promise(done => { const v = document.querySelector('#video');
                v.pause(); v.addEventListener('seeked', () => done(), {once: true});
                v.currentTime = at; })""",
                at,
            )
            state = await page.evaluate("window.tongkeReplay.state")
            assert abs(state["time"] - at) < 0.1
            assert state["page"] == expected_page(events, start + state["time"]), (at, state)
        caption = await page.text_content("#slide-caption")
        assert caption == "第 3 页 / 共 3 页"
        # A review comment at the current moment, then listed with its time.
        await page.fill("#comment-form textarea", "提问有层次。")
        await page.click("#comment-form button")
        await page.wait_for_selector("#comments li .comment-text")
        assert await page.text_content("#comments li .comment-text") == "提问有层次。"
        assert problems == []
