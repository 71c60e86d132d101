"""Slides live over the signalling WebSocket, the fallback path (a real server, real sockets
that never answer the subscribe offer, so their data channels never open: everything must
still work): the teacher opens a deck, turns pages, points and draws; classrooms see it; one
that joins late gets the page and its ink at once; classrooms cannot turn pages; the lesson
keeps its slide events. The primary path, the data channels: tests/test_slides_channel.py."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from bench.sample_deck import sample_deck
from server.recording import copy_slide_events
from tests.test_signalling import join, recv


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def upload(http: aiohttp.ClientSession, server, pages: int = 4) -> dict[str, Any]:
    token = server.mint("math7", "teacher", "王老师")
    async with http.post(
        f"{server.url}/api/decks?token={token}&name=lesson.pdf", data=sample_deck(pages)
    ) as r:
        assert r.status == 201, await r.text()
        return await r.json()


async def send(ws, kind: str, **fields) -> None:
    await ws.send_json({"v": 1, "type": kind, **fields})


async def drain(ws, kind: str, seconds: float) -> list[dict]:
    """Every message of `kind` arriving within `seconds`."""
    got = []
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while (left := end - loop.time()) > 0:
        try:
            msg = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        data = json.loads(msg.data)
        if data["type"] == kind:
            got.append(data)
    return got


async def test_page_ink_and_late_join(server, http):
    manifest = await upload(http, server)
    deck_id = manifest["id"]
    teacher, _ = await join(http, server, "teacher", "王老师", room="math7")
    empty = await recv(teacher, "slides_state")
    assert empty["deck"] is None and empty["ink"] == []
    early, _ = await join(http, server, "classroom", "七(1)班", room="math7")
    await recv(early, "slides_state")

    await send(teacher, "slide_deck", deck=deck_id)
    state = await recv(early, "slides_state")
    assert state["deck"]["id"] == deck_id and state["deck"]["count"] == 4 and state["page"] == 1
    assert state["deck"]["url"] == f"/decks/{deck_id}/{{page}}.webp"
    await send(teacher, "slide_page", page=3)
    state = await recv(early, "slides_state")
    assert state["page"] == 3 and state["ink"] == []

    stroke = {"points": [[0.1, 0.2], [0.3, 0.25], [0.5, 0.3]], "color": "#E53935", "width": 0.004}
    await send(teacher, "slide_ink", **stroke)
    await send(teacher, "slide_ink", points=[[0.5, 0.3], [0.6, 1.7]], color="#1e88e5", width=0.01)
    first = await recv(early, "slide_ink")
    assert first["page"] == 3 and first["stroke"]["points"] == stroke["points"]
    assert first["stroke"]["color"] == "#e53935"
    second = await recv(early, "slide_ink")
    assert second["stroke"]["points"][1] == [0.6, 1.0]  # clamped to the page

    # a classroom that joins now sees page 3 with both strokes, without waiting for anything
    late, _ = await join(http, server, "classroom", "七(2)班", room="math7")
    state = await recv(late, "slides_state", timeout=2)
    assert state["deck"]["id"] == deck_id and state["page"] == 3
    assert [s["color"] for s in state["ink"]] == ["#e53935", "#1e88e5"]

    # classrooms may watch, not drive
    for kind, fields in (
        ("slide_page", {"page": 1}),
        ("slide_ink", stroke),
        ("slide_clear", {}),
        ("slide_deck", {"deck": None}),
        ("slide_pointer", {"x": 0.5, "y": 0.5}),
    ):
        await send(late, kind, **fields)
        err = await recv(late, "error")
        assert err["code"] == "not_allowed" and err["message"], kind
    # the teacher's own mistakes get clear errors, the state stays
    await send(teacher, "slide_page", page=9)
    assert (await recv(teacher, "error"))["code"] == "bad_message"
    await send(teacher, "slide_deck", deck="f" * 64)
    assert (await recv(teacher, "error"))["code"] == "unknown_deck"
    await send(teacher, "slide_ink", points=[[0.1, 0.1]], color="red", width=0.004)
    assert (await recv(teacher, "error"))["code"] == "bad_message"

    # a reconnect (same participant) gets the same state again
    await late.close()
    again, _ = await join(http, server, "classroom", "七(2)班", room="math7")
    state = await recv(again, "slides_state", timeout=2)
    assert state["page"] == 3 and len(state["ink"]) == 2

    # clear wipes the ink, a page turn too
    await send(teacher, "slide_clear")
    assert (await recv(early, "slides_state"))["ink"] == []
    await send(teacher, "slide_page", page=4)
    assert (await recv(early, "slides_state"))["page"] == 4

    events = read_events(server, "math7")
    assert [e["type"] for e in events] == ["deck", "page", "ink", "ink", "clear", "page"]
    assert events[0]["deck"] == deck_id and events[0]["url"].endswith("/{page}.webp")
    assert events[1]["page"] == 3 and events[2]["points"] == stroke["points"]
    assert all(isinstance(e["t"], float) for e in events)
    for ws in (teacher, early, again):
        await ws.close()


async def test_pointer_is_rate_limited_and_ends_where_the_teacher_stopped(server, http):
    manifest = await upload(http, server, pages=2)
    teacher, _ = await join(http, server, "teacher", "王老师", room="math7")
    cls, _ = await join(http, server, "classroom", "七(1)班", room="math7")
    await send(teacher, "slide_deck", deck=manifest["id"])
    await recv(cls, "slides_state")
    for i in range(30):  # 30 moves in a burst
        await send(teacher, "slide_pointer", x=i / 30, y=0.5)
    got = await drain(cls, "slide_pointer", 0.5)
    assert 1 <= len(got) <= 5, len(got)
    assert got[-1]["x"] == round(29 / 30, 4) and got[-1]["y"] == 0.5
    await send(teacher, "slide_pointer", x=None, y=None)  # hidden at once
    hidden = await recv(cls, "slide_pointer")
    assert hidden["x"] is None
    pointer_events = [e for e in read_events(server, "math7") if e["type"] == "pointer"]
    assert len(pointer_events) == len(got) + 1
    await teacher.close()
    await cls.close()


async def test_recording_copies_the_lessons_slide_events(server, http, tmp_path):
    manifest = await upload(http, server, pages=2)
    teacher, _ = await join(http, server, "teacher", "王老师", room="math7")
    assert (await recv(teacher, "slides_state"))["deck"] is None
    await send(teacher, "slide_deck", deck=manifest["id"])
    assert (await recv(teacher, "slides_state"))["page"] == 1
    await asyncio.sleep(0.05)
    begin = time.time()  # recording starts after the deck was opened
    await send(teacher, "slide_page", page=2)
    assert (await recv(teacher, "slides_state"))["page"] == 2
    src = server.settings.data_dir / "lessons" / "math7" / "slide-events.jsonl"
    dst = tmp_path / "copy.jsonl"
    assert copy_slide_events(src, dst, begin, time.time() + 1) == 2
    kept = [json.loads(line) for line in dst.read_text().splitlines()]
    assert [e["type"] for e in kept] == ["deck", "page"] and kept[0]["deck"] == manifest["id"]
    await teacher.close()


def read_events(server, room: str) -> list[dict]:
    path = server.settings.data_dir / "lessons" / room / "slide-events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
