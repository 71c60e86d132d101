"""Slides live over the WebRTC data channels (a real server, real aiortc peers): the teacher
sends its slide events on the channel, classrooms get them there and not on the socket, a
late joiner gets the page and its ink on the channel the moment it opens; a classroom cannot
drive the slides on the channel either, a garbage message gets an error and the session goes
on; the pointer channel is unordered without retransmits and still rate-limited."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from server.client import EventOrder, Participant
from server.event_channels import EVENTS, POINTER
from tests.test_slides_live import read_events, upload

STROKE = {"points": [[0.1, 0.2], [0.3, 0.25], [0.5, 0.3]], "color": "#E53935", "width": 0.004}


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class Peer:
    """A participant with its data channels open, keeping what arrived and by which path."""

    def __init__(self, participant: Participant) -> None:
        self.p = participant
        self.events: list[tuple[dict[str, Any], str]] = []  # slide events that were news
        self.changed = asyncio.Event()
        participant.on_event.append(self._on_event)
        participant.on_message.append(lambda _m: self.changed.set())

    def _on_event(self, message: dict[str, Any], via: str) -> None:
        self.events.append((message, via))

    async def until(self, test: Callable[[], Any], timeout: float = 5.0) -> Any:
        async def poll() -> Any:
            while not (result := test()):
                self.changed.clear()
                await self.changed.wait()
            return result

        return await asyncio.wait_for(poll(), timeout)

    def last(self, kind: str) -> tuple[dict[str, Any], str] | None:
        return next(((m, v) for m, v in reversed(self.events) if m["type"] == kind), None)

    async def error(self, count: int) -> dict[str, Any]:
        """The `count`th error this participant has been sent."""
        await self.until(lambda: len(self.p.errors) >= count)
        return self.p.errors[count - 1]


async def peer(server, role: str, name: str, room: str = "math7") -> Peer:
    participant = Participant(encoded=True)
    watched = Peer(participant)
    await participant.connect(server.url, server.mint(room, role, name))
    await participant.join()
    await participant.wait_channels(timeout=15)
    return watched


async def test_slides_travel_on_the_channel_and_a_late_joiner_gets_page_and_ink(server, http):
    deck_id = (await upload(http, server))["id"]
    teacher = await peer(server, "teacher", "王老师")
    early = await peer(server, "classroom", "七(1)班")
    socket_before = early.p.events_received["socket"]

    assert await teacher.p.send_event({"type": "slide_deck", "deck": deck_id}) == "channel"
    await early.until(lambda: (s := early.last("slides_state")) and s[0]["deck"])
    assert await teacher.p.send_event({"type": "slide_page", "page": 3}) == "channel"
    await early.until(lambda: early.last("slides_state")[0]["page"] == 3)
    assert await teacher.p.send_event({"type": "slide_ink", **STROKE}) == "channel"
    second = {"type": "slide_ink", "points": [[0.5, 0.3], [0.6, 1.7]], "color": "#1e88e5",
              "width": 0.01}
    assert await teacher.p.send_event(second) == "channel"
    await early.until(lambda: sum(m["type"] == "slide_ink" for m, _ in early.events) == 2)
    inks = [(m, via) for m, via in early.events if m["type"] == "slide_ink"]
    assert [via for _, via in inks] == ["channel", "channel"]
    assert inks[0][0]["stroke"]["points"] == STROKE["points"]
    assert inks[1][0]["stroke"]["points"][1] == [0.6, 1.0]  # clamped, as on the socket
    # once the channel is open, nothing of the slides comes on the socket
    assert early.p.events_received["socket"] == socket_before
    assert all(via == "channel" for m, via in early.events if m["seq"] > 0)
    # the state on opening, the deck and the page turn: on `events` and a copy on `pointer`
    # (whichever comes first is shown); the strokes on `events` only
    # (the state on opening has its copy only if `pointer` was open by then)
    sent = server.rooms.get("math7").participants[early.p.you["id"]].session.channels.sent
    assert sent["events"] == 5 and sent["pointer"] in (2, 3), sent
    assert early.p.events_received["channel"] == sent["events"] + sent["pointer"]
    assert [m["type"] for m, _ in early.events].count("slides_state") == 3  # each once

    # a classroom joining now: page 3 with both strokes, on the channel as soon as it opens
    # (and on the socket right after `joined`, before the channel is up)
    late = await peer(server, "classroom", "七(2)班")
    state = await late.until(lambda: late.p.last_state.get("channel"))
    assert state["deck"]["id"] == deck_id and state["page"] == 3
    assert [s["color"] for s in state["ink"]] == ["#e53935", "#1e88e5"]
    assert late.last("slides_state")[0] == state  # what the class shows: the same
    assert state["seq"] == server.rooms.get("math7").slides.seq

    # a reconnect (same participant, new session): the same page and ink again, on the channel
    await late.p.close()
    again = await peer(server, "classroom", "七(2)班")
    state = await again.until(lambda: again.p.last_state.get("channel"))
    assert state["page"] == 3 and len(state["ink"]) == 2

    # clear and turn: everyone follows, the lesson keeps the events
    await teacher.p.send_event({"type": "slide_clear"})
    await again.until(lambda: again.last("slides_state")[0]["ink"] == [])
    await teacher.p.send_event({"type": "slide_page", "page": 4})
    await early.until(lambda: early.last("slides_state")[0]["page"] == 4)
    assert [e["type"] for e in read_events(server, "math7")] == [
        "deck", "page", "ink", "ink", "clear", "page"
    ]
    assert not teacher.p.errors and not early.p.errors
    for p in (teacher, early, again):
        await p.p.close()


async def test_a_classroom_cannot_drive_the_slides_on_the_channel(server, http):
    deck_id = (await upload(http, server, pages=2))["id"]
    teacher = await peer(server, "teacher", "王老师")
    cls = await peer(server, "classroom", "七(1)班")
    observer = await peer(server, "observer", "教务处")
    await teacher.p.send_event({"type": "slide_deck", "deck": deck_id})
    await cls.until(lambda: (s := cls.last("slides_state")) and s[0]["deck"])
    board = server.rooms.get("math7").slides
    attempts = [
        {"type": "slide_page", "page": 2},
        {"type": "slide_ink", **STROKE},
        {"type": "slide_clear"},
        {"type": "slide_deck", "deck": None},
        {"type": "slide_pointer", "x": 0.5, "y": 0.5},
    ]
    for who in (cls, observer):
        for i, message in enumerate(attempts, 1):
            assert await who.p.send_event(message) == "channel"
            err = await who.error(i)
            assert err["code"] == "not_allowed" and err["message"], message
    assert board.page == 1 and board.ink == [] and board.pointer is None
    assert board.deck is not None and board.deck["id"] == deck_id
    for p in (teacher, cls, observer):
        await p.p.close()


async def test_garbage_on_the_channel_gets_an_error_and_the_session_goes_on(server, http):
    deck_id = (await upload(http, server, pages=2))["id"]
    teacher = await peer(server, "teacher", "王老师")
    cls = await peer(server, "classroom", "七(1)班")
    garbage: list[tuple[str | bytes, str, str]] = [
        ("this is not json", EVENTS.label, "bad_json"),
        (b"\xff\xfe\x00binary", EVENTS.label, "bad_json"),
        ("[1, 2, 3]", POINTER.label, "bad_json"),
        (json.dumps({"type": "slide_page", "page": 1}), EVENTS.label, "bad_version"),
        (json.dumps({"v": 1, "type": "launch"}), EVENTS.label, "unknown_type"),
        (json.dumps({"v": 1, "type": "join"}), EVENTS.label, "bad_message"),  # socket only
        (json.dumps({"v": 1, "type": "slide_ink", "points": "x", "color": "#000000",
                     "width": 0.01}), EVENTS.label, "bad_message"),
        (json.dumps({"v": 1, "type": "slide_page", "page": 1}), EVENTS.label, "wrong_order"),
        (json.dumps({"v": 1, "type": "slide_pointer", "x": "left", "y": 0}), POINTER.label,
         "bad_message"),
        ("x" * 70_000, EVENTS.label, "too_large"),
    ]
    for i, (data, label, code) in enumerate(garbage, 1):
        if i == 9:  # a pointer needs a deck first: open one
            await teacher.p.send_event({"type": "slide_deck", "deck": deck_id})
        await teacher.p.send_raw_on_channel(data, label)
        err = await teacher.error(i)
        assert err["code"] == code, (data[:40], err)
        assert err["message"] and err["detail"]  # Chinese for people, English for developers
    # the session is alive: the same channels carry the next page turn to the class
    await teacher.p.send_event({"type": "slide_page", "page": 2})
    state, via = await cls.until(lambda: (s := cls.last("slides_state")) and s[0]["page"] == 2
                                 and s)
    assert via == "channel"
    assert await teacher.p._request({"type": "ping"}, "pong", 5)  # the socket too
    assert server.rooms.get("math7").participants.keys() >= {teacher.p.you["id"]}
    for p in (teacher, cls):
        await p.p.close()


async def test_pointer_channel_is_unreliable_unordered_and_rate_limited(server, http):
    deck_id = (await upload(http, server, pages=2))["id"]
    teacher = await peer(server, "teacher", "王老师")
    cls = await peer(server, "classroom", "七(1)班")
    pointer = cls.p.channels[POINTER.label]
    assert not pointer.ordered and pointer.maxRetransmits == 0  # as the server opened it
    events = cls.p.channels[EVENTS.label]
    assert events.ordered and events.maxRetransmits is None and events.maxPacketLifeTime is None
    await teacher.p.send_event({"type": "slide_deck", "deck": deck_id})
    await cls.until(lambda: (s := cls.last("slides_state")) and s[0]["deck"])
    for i in range(30):  # a burst of 30 moves on the channel
        assert await teacher.p.send_event({"type": "slide_pointer", "x": i / 30, "y": 0.5}) == (
            "channel"
        )
    await asyncio.sleep(0.6)
    moves = [(m, via) for m, via in cls.events if m["type"] == "slide_pointer"]
    assert 1 <= len(moves) <= 5, len(moves)  # BoardPolicy: at most 20 a second
    assert {via for _, via in moves} == {"channel"}
    assert moves[-1][0]["x"] == round(29 / 30, 4)  # the last position is never held back
    # hiding it is state: on the reliable channel (a lost hide would leave the dot shown)
    sent = dict(server.rooms.get("math7").participants[cls.p.you["id"]].session.channels.sent)
    await teacher.p.send_event({"type": "slide_pointer", "x": None, "y": None})
    await cls.until(lambda: cls.last("slide_pointer")[0]["x"] is None)
    after = server.rooms.get("math7").participants[cls.p.you["id"]].session.channels.sent
    assert after == {"events": sent["events"] + 1, "pointer": sent["pointer"]}
    for p in (teacher, cls):
        await p.p.close()


def test_event_order_keeps_the_newest():
    order = EventOrder()
    arrivals = [
        ({"type": "slides_state", "seq": 0}, True),  # on the socket after `joined`
        ({"type": "slides_state", "seq": 0}, False),  # again when the channel opens
        ({"type": "slide_ink", "seq": 1}, True),
        ({"type": "slide_pointer", "seq": 3}, True),  # the unordered channel overtakes
        ({"type": "slide_ink", "seq": 2}, True),
        ({"type": "slide_pointer", "seq": 2}, False),  # older than the move shown
        ({"type": "slides_state", "seq": 1}, False),  # a late copy from the socket
        ({"type": "slides_state", "seq": 4}, True),
        ({"type": "slide_pointer", "seq": 3}, False),  # from before the page turn
        ({"type": "slide_pointer", "seq": 5}, True),
    ]
    assert [order.fresh(m) for m, _ in arrivals] == [fresh for _, fresh in arrivals]


async def test_a_state_too_large_for_a_channel_comes_on_the_socket(server, http):
    """A page full of ink (20,000 points, ~360 KB of JSON) is more than a peer takes in one
    data-channel message (256 KiB): the state goes on the socket instead, complete."""
    deck_id = (await upload(http, server, pages=2))["id"]
    teacher = await peer(server, "teacher", "王老师")
    await teacher.p.send_event({"type": "slide_deck", "deck": deck_id})
    strokes = 40
    for s in range(strokes):
        points = [[round(0.1 + i / 1000, 4), round(0.1 + s / 50, 4)] for i in range(500)]
        await teacher.p.send_event(
            {"type": "slide_ink", "points": points, "color": "#1e88e5", "width": 0.004}
        )
    board = server.rooms.get("math7").slides
    await teacher.until(lambda: len(board.ink) == strokes)
    assert len(json.dumps(board.state_message())) > 262_144

    late = await peer(server, "classroom", "七(2)班")
    # the socket's state after `joined`, and again instead of the channel's when it opened
    await late.until(lambda: late.p.events_received["socket"] == 2)
    assert "channel" not in late.p.last_state and not late.p.errors
    state = late.last("slides_state")[0]
    assert len(state["ink"]) == strokes and state["ink"] == board.ink
    # small events still take the channel
    await teacher.p.send_event({"type": "slide_clear"})
    await late.until(lambda: late.last("slides_state")[0]["ink"] == [])
    assert late.last("slides_state")[1] == "channel"
    for p in (teacher, late):
        await p.p.close()
