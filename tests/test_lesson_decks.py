"""Decks prepared ahead of a timetabled lesson, on a real server whose timetable clock the test
sets (the 随县 sample consortium): the lesson's teacher uploads a deck with their standing link
and attaches it to a coming lesson; refusals change nothing; the attachment survives a restart;
the classroom's standing answer carries the deck (to prefetch it); the lesson's room opens on
it at page 1. A room's slide state (deck, page, ink) survives the room emptying and a restart."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bench.sample_deck import sample_deck
from scheduler.slots import Slot
from server import standing
from server.slides.resume import left_state
from server.timetable import TZ, Timetable, room_name
from server.timetable_app import TIMETABLE, keep_rooms
from tests.conftest import make_settings, running
from tests.signalling_client import recv
from tests.test_signalling import join

CID = "suixian-yandi"
MONDAY = dt.date(2027, 3, 1)  # a Monday of the spring term


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def first_lesson(tt: Timetable) -> Slot:
    """The week's first streamed lesson that has classes."""
    streamed = [s for s in tt.plan.lessons if not tt.consortium.courses[s.item].local]
    return min(streamed, key=lambda s: (s.day, s.start))


def bell(slot: Slot, minute: int | None = None) -> dt.datetime:
    day = MONDAY + dt.timedelta(days=slot.day - 1)
    m = slot.start if minute is None else minute
    return dt.datetime.combine(day, dt.time(m // 60, m % 60), TZ)


def room_of(slot: Slot) -> str:
    return room_name(slot.item, MONDAY + dt.timedelta(days=slot.day - 1), slot.start)


async def upload(http: aiohttp.ClientSession, url: str, token: str, pages: int) -> dict[str, Any]:
    async with http.post(f"{url}/api/decks", params={"token": token, "name": "第三课.pdf"},
                         data=sample_deck(pages)) as r:
        assert r.status in (200, 201), await r.text()
        return await r.json()


async def call(http, method: str, url: str, token: str, body: Any = None) -> tuple[int, dict]:
    kw: dict[str, Any] = {"params": {"token": token}}
    if body is not None:
        kw["data" if isinstance(body, str) else "json"] = body
    async with http.request(method, url, **kw) as r:
        return r.status, await r.json()


async def test_teacher_prepares_a_deck_and_the_lesson_opens_on_it(tmp_path: Path, http) -> None:
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]  # Monday, before school
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings, now=lambda: clock[0]) as srv:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        lesson = first_lesson(tt)
        room = room_of(lesson)
        course = tt.consortium.courses[lesson.item]
        teacher = standing.mint(srv.issuer, tt, "teacher", course.teacher)
        klass = course.classes[0]
        other = next(t for t in tt.consortium.teachers if t != course.teacher)
        deck_url = f"{srv.url}/api/lessons/{room}/deck"

        # The teacher's coming lessons, none prepared yet.
        status, coming = await call(http, "GET", f"{srv.url}/api/lessons/upcoming", teacher)
        assert status == 200, coming
        listed = {x["room"]: x for x in coming["lessons"]}
        assert room in listed and listed[room]["deck"] is None
        assert coming["teacher"]["id"] == course.teacher

        # Upload with the standing link (a teacher's token), then attach.
        manifest = await upload(http, srv.url, teacher, pages=3)
        deck = manifest["id"]
        status, body = await call(http, "PUT", deck_url, teacher, {"deck": deck})
        assert status == 200, body
        assert body["deck"]["id"] == deck and body["deck"]["count"] == 3
        assert body["deck"]["manifest"] == f"/decks/{deck}/manifest.json"
        assert body["lesson"]["room"] == room and body["live"] is False

        # Refusals, each with a Chinese message and an English detail; nothing changes.
        refusals = [
            ("PUT", f"{srv.url}/api/lessons/nosuch-20270301-0800/deck", teacher, {"deck": deck},
             404, "unknown_lesson"),
            ("PUT", deck_url, teacher, {"deck": "f" * 64}, 404, "unknown_deck"),
            ("PUT", deck_url, teacher, {"deck": "../etc"}, 400, "bad_request"),
            ("PUT", deck_url, teacher, "not json", 400, "bad_request"),
            ("PUT", deck_url, standing.mint(srv.issuer, tt, "teacher", other), {"deck": deck},
             403, "not_allowed"),
            ("PUT", deck_url, standing.mint(srv.issuer, tt, "class", klass), {"deck": deck},
             403, "not_allowed"),
            ("DELETE", deck_url, srv.mint("*", "observer", "教务处", consortium="huarong-shiyan"),
             None, 403, "not_allowed"),
            ("PUT", deck_url, "forged", {"deck": deck}, 401, "bad_token"),
        ]
        for method, url, token, payload, code, reason in refusals:
            status, err = await call(http, method, url, token, payload)
            assert (status, err["code"]) == (code, reason), (method, url, err)
            assert err["message"] and err["detail"]
        status, coming = await call(http, "GET", f"{srv.url}/api/lessons/upcoming", teacher)
        assert {x["room"]: x for x in coming["lessons"]}[room]["deck"]["id"] == deck

        # Staff of the consortium may prepare it too; the lesson's own room token as well.
        staff = srv.mint("*", "observer", "教务处", consortium=CID)
        status, body = await call(http, "PUT", deck_url, staff, {"deck": deck})
        assert status == 200 and body["deck"]["id"] == deck
        room_teacher = srv.mint(room, "teacher", "王老师")
        status, _ = await call(http, "PUT", deck_url, room_teacher, {"deck": deck})
        assert status == 200
        upcoming = f"{srv.url}/api/lessons/upcoming?consortium={CID}&teacher={course.teacher}"
        status, coming = await call(http, "GET", upcoming, staff)
        assert status == 200 and {x["room"]: x for x in coming["lessons"]}[room]["deck"]
        for token, code in (
            (srv.mint("*", "observer", "教务处", consortium="huarong-shiyan"), 403),
            (standing.mint(srv.issuer, tt, "class", klass), 403),
            (room_teacher, 403),
        ):
            status, err = await call(http, "GET", upcoming, token)
            assert status == code and err["code"] == "not_allowed", err

        # The class's standing link, counting down, is told the deck to fetch ahead.
        class_token = standing.mint(srv.issuer, tt, "class", klass)
        clock[0] = bell(lesson) - dt.timedelta(minutes=20)
        async with http.get(f"{srv.url}/api/timetable/now", params={"token": class_token}) as r:
            answer = await r.json()
        assert answer["now"] is None and answer["next"]["room"] == room
        assert answer["next"]["deck"]["id"] == deck
        assert answer["next"]["deck"]["url"] == f"/decks/{deck}/{{page}}.webp"

    # A restart: the attachment is still there; at the lesson the room opens on the deck.
    async with running(make_settings(tmp_path, ladder=False), now=lambda: clock[0]) as srv:
        deck_url = f"{srv.url}/api/lessons/{room}/deck"
        status, coming = await call(http, "GET", f"{srv.url}/api/lessons/upcoming", teacher)
        assert {x["room"]: x for x in coming["lessons"]}[room]["deck"]["id"] == deck
        clock[0] = bell(lesson) - dt.timedelta(minutes=2)
        keep_rooms(srv.app[TIMETABLE], srv.rooms, set())
        live = srv.rooms.get(room)
        assert live is not None and live.slides.deck["id"] == deck and live.slides.page == 1

        async with http.get(f"{srv.url}/api/timetable/now", params={"token": class_token}) as r:
            now = (await r.json())["now"]
        assert now["room"] == room and now["deck"]["id"] == deck
        ws = await http.ws_connect(f"{srv.ws_url}?token={now['token']}")
        await ws.send_json({"v": 1, "type": "join"})
        state = await recv(ws, "slides_state", 10)
        assert state["deck"]["id"] == deck and state["page"] == 1 and state["ink"] == []
        await ws.close()
        events = read_events(srv, room)
        assert [e["type"] for e in events] == ["deck"] and events[0]["page"] == 1

        # Over: no more preparing it, and detaching says what is wrong.
        clock[0] = bell(lesson, lesson.end) + dt.timedelta(minutes=1)
        status, err = await call(http, "DELETE", deck_url, teacher)
        assert status == 409 and err["code"] == "lesson_over"


async def test_attaching_to_an_open_room_applies_until_the_teacher_takes_over(
    tmp_path: Path, http
) -> None:
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]
    async with running(make_settings(tmp_path, ladder=False), now=lambda: clock[0]) as srv:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        lesson = first_lesson(tt)
        room = room_of(lesson)
        teacher = standing.mint(srv.issuer, tt, "teacher",
                                tt.consortium.courses[lesson.item].teacher)
        first = (await upload(http, srv.url, teacher, pages=2))["id"]
        second = (await upload(http, srv.url, teacher, pages=3))["id"]
        deck_url = f"{srv.url}/api/lessons/{room}/deck"

        clock[0] = bell(lesson) - dt.timedelta(minutes=1)  # the room is open, nobody in it
        keep_rooms(srv.app[TIMETABLE], srv.rooms, set())
        status, body = await call(http, "PUT", deck_url, teacher, {"deck": first})
        assert status == 200 and body["live"] is True
        assert srv.rooms.get(room).slides.deck["id"] == first

        # Emptied and opened again before anyone changed it: the latest preparation wins.
        srv.rooms.discard_if_empty(srv.rooms.get(room))
        status, body = await call(http, "PUT", deck_url, teacher, {"deck": second})
        assert status == 200 and body["live"] is False  # no room open now
        keep_rooms(srv.app[TIMETABLE], srv.rooms, set())
        assert srv.rooms.get(room).slides.deck["id"] == second
        status, body = await call(http, "PUT", deck_url, teacher, {"deck": first})
        assert body["live"] is True and srv.rooms.get(room).slides.deck["id"] == first

        # The teacher joins and turns a page: a new attachment no longer moves the board.
        ws, _ = await join(http, srv, "teacher", "王老师", room=room)
        assert (await recv(ws, "slides_state"))["deck"]["id"] == first
        await ws.send_json({"v": 1, "type": "slide_page", "page": 2})
        assert (await recv(ws, "slides_state"))["page"] == 2
        status, body = await call(http, "PUT", deck_url, teacher, {"deck": second})
        assert status == 200 and body["live"] is False
        slides = srv.rooms.get(room).slides
        assert slides.deck["id"] == first and slides.page == 2
        status, body = await call(http, "DELETE", deck_url, teacher)
        assert status == 200 and body["deck"] is None
        status, err = await call(http, "DELETE", deck_url, teacher)
        assert status == 404 and err["code"] == "no_deck"
        await ws.close()

        # The room emptied and opened again: the teacher's page, not the preparation.
        await wait_gone(srv, room)
        keep_rooms(srv.app[TIMETABLE], srv.rooms, set())
        slides = srv.rooms.get(room).slides
        assert slides.deck["id"] == first and slides.page == 2
        kinds = [(e["type"], e.get("planned", False)) for e in read_events(srv, room)]
        assert kinds == [("deck", True), ("deck", True), ("deck", True), ("page", False)], kinds


async def test_the_board_survives_the_room_emptying_and_a_restart(tmp_path: Path, http) -> None:
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings) as srv:
        deck = (await upload(http, srv.url, srv.mint("math7", "teacher", "王老师"), pages=4))["id"]
        teacher, _ = await join(http, srv, "teacher", "王老师", room="math7")
        await recv(teacher, "slides_state")
        strokes = [
            {"points": [[0.1, 0.2], [0.3, 0.25]], "color": "#e53935", "width": 0.004},
            {"points": [[0.5, 0.5], [0.6, 0.7], [0.7, 0.7]], "color": "#1e88e5", "width": 0.01},
        ]
        await teacher.send_json({"v": 1, "type": "slide_deck", "deck": deck})
        await recv(teacher, "slides_state")
        await teacher.send_json({"v": 1, "type": "slide_ink", **strokes[0]})  # on page 1
        await teacher.send_json({"v": 1, "type": "slide_page", "page": 3})
        assert (await recv(teacher, "slides_state"))["page"] == 3
        await teacher.send_json({"v": 1, "type": "slide_ink", **strokes[1]})
        await teacher.send_json({"v": 1, "type": "slide_clear"})
        assert (await recv(teacher, "slides_state"))["ink"] == []
        for stroke in strokes:
            await teacher.send_json({"v": 1, "type": "slide_ink", **stroke})
        await teacher.send_json({"v": 1, "type": "slide_pointer", "x": 0.4, "y": 0.4})
        await recv(teacher, "slide_pointer")  # the last one the room has seen

        # Everyone leaves: the room is gone.
        await teacher.close()
        await wait_gone(srv, "math7")

        # The teacher comes back (a reload, the link back): deck, page and ink as they were.
        teacher, _ = await join(http, srv, "teacher", "王老师", room="math7")
        state = await recv(teacher, "slides_state")
        assert state["deck"]["id"] == deck and state["page"] == 3
        assert state["ink"] == strokes and state["pointer"] is None
        # ...and goes on drawing, which a class joining now sees with the rest.
        more = {"points": [[0.2, 0.9], [0.3, 0.9]], "color": "#43a047", "width": 0.004}
        await teacher.send_json({"v": 1, "type": "slide_ink", **more})
        cls, _ = await join(http, srv, "classroom", "七(1)班", room="math7")
        state = await recv(cls, "slides_state")
        assert state["ink"] == [*strokes, more]
        await teacher.close()
        await cls.close()

    # A server restart (the same data directory): the same again.
    async with running(make_settings(tmp_path, ladder=False)) as srv:
        cls, _ = await join(http, srv, "classroom", "七(1)班", room="math7")
        state = await recv(cls, "slides_state")
        assert state["deck"]["id"] == deck and state["page"] == 3
        assert state["ink"] == [*strokes, more]
        await cls.close()
        await wait_gone(srv, "math7")

        # A deck closed on purpose stays closed.
        teacher, _ = await join(http, srv, "teacher", "王老师", room="math7")
        await recv(teacher, "slides_state")
        await teacher.send_json({"v": 1, "type": "slide_deck", "deck": None})
        assert (await recv(teacher, "slides_state"))["deck"] is None
        await teacher.close()
        await wait_gone(srv, "math7")
        cls, _ = await join(http, srv, "classroom", "七(1)班", room="math7")
        assert (await recv(cls, "slides_state"))["deck"] is None
        await cls.close()


def test_left_state_skips_a_line_cut_short(tmp_path: Path) -> None:
    """A server killed mid-write leaves half a line: the events before it still count. Ink of
    an earlier page, pointer moves and a deck closed before the last one are not shown."""
    path = tmp_path / "slide-events.jsonl"
    deck = {"deck": "a" * 64, "name": "x.pdf", "count": 2, "url": "/u/{page}", "thumb": "/t"}
    old = {**deck, "deck": "b" * 64}
    ink = {"points": [[0.1, 0.1], [0.2, 0.2]], "color": "#212121", "width": 0.004}
    lines = [
        {"t": 0.5, "type": "deck", **old, "page": 1, "planned": True},
        {"t": 0.6, "type": "ink", **ink},
        {"t": 1.0, "type": "deck", **deck, "page": 1},
        {"t": 1.5, "type": "ink", **{**ink, "color": "#e53935"}},  # page 1's
        {"t": 2.0, "type": "page", "page": 2},
        {"t": 3.0, "type": "ink", **ink},
        {"t": 4.0, "type": "pointer", "x": 0.5, "y": 0.5},
    ]
    path.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in lines)
        + '{"t": 5.0, "type": "deck", "deck": null'
    )
    left = left_state(path)
    assert left is not None and left.deck is not None and left.touched
    assert (left.deck["id"], left.page, left.last_event) == ("a" * 64, 2, 4.0)
    assert left.ink == [ink]
    assert left_state(tmp_path / "none.jsonl") is None

    # Only the lesson's preparation wrote: not changed by a person.
    path.write_text(json.dumps({"t": 0.5, "type": "deck", **old, "page": 1, "planned": True}))
    left = left_state(path)
    assert left is not None and left.deck is not None and not left.touched
    path.write_text('{"t": 5.0, "type": "de')
    assert left_state(path) is None


async def wait_gone(srv, room: str) -> None:
    """The server drops an empty room once the last session has finished closing."""
    for _ in range(100):
        if srv.rooms.get(room) is None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"room {room} still open")


def read_events(srv, room: str) -> list[dict]:
    path = srv.settings.data_dir / "lessons" / room / "slide-events.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
