"""The signalling server against bad input, wrong order and refused roles (real server, real
WebSockets). Media flows are in test_lesson.py."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection

from server.protocol import MAX_MESSAGE_BYTES
from tests.signalling_client import recv

SDP = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"  # shaped like SDP, negotiates nothing


async def connect(http: aiohttp.ClientSession, server, role: str, name: str = "x", **kw) -> Any:
    token = server.mint(kw.pop("room", "room1"), role, name, **kw)
    return await http.ws_connect(f"{server.ws_url}?token={token}")


async def join(http, server, role, name="x", **kw):
    ws = await connect(http, server, role, name, **kw)
    await ws.send_json({"v": 1, "type": "join"})
    joined = await recv(ws, "joined")
    return ws, joined


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_health(server, http):
    async with http.get(f"{server.url}/health") as r:
        assert (await r.json())["status"] == "ok"


@pytest.mark.parametrize(
    "raw, code",
    [
        ("{oops", "bad_json"),
        (json.dumps({"v": 9, "type": "join"}), "bad_version"),
        (json.dumps({"v": 1, "type": "teleport"}), "unknown_type"),
        (json.dumps({"v": 1, "type": "hand"}), "bad_message"),
        (json.dumps({"v": 1, "type": "ping", "x": "y" * MAX_MESSAGE_BYTES}), "too_large"),
        (json.dumps({"v": 1, "type": "publish", "sdp": SDP, "tracks": {}}), "wrong_order"),
    ],
)
async def test_bad_messages_get_clear_errors_and_the_session_carries_on(server, http, raw, code):
    ws = await connect(http, server, "teacher")
    await ws.send_str(raw)
    err = await recv(ws, "error")
    assert err["code"] == code and err["message"]
    await ws.send_json({"v": 1, "type": "ping"})
    await recv(ws, "pong")
    await ws.close()


async def test_forged_token_is_refused_and_socket_closed(server, http):
    ws = await http.ws_connect(f"{server.ws_url}?token=eyJhbGciOiJIUzI1NiJ9.e30.forged")
    err = await recv(ws, "error")
    assert err["code"] == "bad_token"
    msg = await ws.receive()
    assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4401


async def test_expired_token_is_refused(server, http):
    ws = await connect(http, server, "classroom", ttl=-1)
    err = await recv(ws, "error")
    assert err["code"] == "expired_token" and "过期" in err["message"]


async def test_observer_cannot_open_a_room_that_is_not_live(server, http):
    ws = await connect(http, server, "observer", room="nobody-here")
    await ws.send_json({"v": 1, "type": "join"})
    assert (await recv(ws, "error"))["code"] == "unknown_room"


async def test_roles_are_enforced(server, http):
    teacher, _ = await join(http, server, "teacher", "王老师")
    classroom, _ = await join(http, server, "classroom", "七(1)班")
    observer, _ = await join(http, server, "observer", "巡课")
    # a classroom may not share a screen, nor call on anyone
    await classroom.send_json({"v": 1, "type": "publish", "sdp": SDP, "tracks": {"0": "screen"}})
    assert (await recv(classroom, "error"))["code"] == "not_allowed"
    await classroom.send_json({"v": 1, "type": "call_on", "participant": None})
    assert (await recv(classroom, "error"))["code"] == "not_allowed"
    # an observer may publish nothing
    await observer.send_json({"v": 1, "type": "publish", "sdp": SDP, "tracks": {"0": "mic"}})
    assert (await recv(observer, "error"))["code"] == "not_allowed"
    await observer.send_json({"v": 1, "type": "hand", "raised": True})
    assert (await recv(observer, "error"))["code"] == "not_allowed"
    for ws in (teacher, classroom, observer):
        await ws.close()


async def test_observer_is_invisible(server, http):
    teacher, _ = await join(http, server, "teacher", "王老师")
    observer, joined = await join(http, server, "observer", "巡课")
    classroom, joined_c = await join(http, server, "classroom", "七(1)班")
    names = [p["name"] for p in joined_c["participants"]]
    assert "王老师" in names and "巡课" not in names
    seen = await recv(teacher, "participant_joined")
    assert seen["participant"]["name"] == "七(1)班"  # the observer's join was never announced
    staff = server.mint("*", "observer", "教务处")
    async with http.get(f"{server.url}/api/rooms", params={"token": staff}) as r:
        staff_view = (await r.json())[0]["participants"]
    assert {"巡课": False} == {p["name"]: p["visible"] for p in staff_view if not p["visible"]}
    for ws in (teacher, observer, classroom):
        await ws.close()


async def test_call_on_hand_and_mute_reach_everyone(server, http):
    teacher, _ = await join(http, server, "teacher", "王老师")
    a, joined_a = await join(http, server, "classroom", "A班")
    b, _ = await join(http, server, "classroom", "B班")
    a_id = joined_a["you"]["id"]
    await a.send_json({"v": 1, "type": "hand", "raised": True})
    state = await recv(teacher, "state")
    assert state["state"]["hands"] == [a_id]
    await teacher.send_json({"v": 1, "type": "call_on", "participant": a_id})
    state = await recv(b, "state")
    while state["state"]["called_on"] != a_id:
        state = await recv(b, "state")
    assert state["state"]["hands"] == []  # calling on a class lowers its hand
    await teacher.send_json({"v": 1, "type": "mute", "participant": a_id, "muted": True})
    assert (await recv(a, "muted"))["muted"] is True
    await teacher.send_json({"v": 1, "type": "call_on", "participant": "nobody"})
    assert (await recv(teacher, "error"))["code"] == "bad_message"
    for ws in (teacher, a, b):
        await ws.close()


async def test_answer_without_offer_and_bad_sdp(server, http):
    ws, _ = await join(http, server, "teacher")
    await recv(ws, "subscribe_offer")
    await ws.send_json({"v": 1, "type": "subscribe_answer", "sdp": "garbage"})
    assert (await recv(ws, "error"))["code"] == "bad_sdp"
    await ws.send_json({"v": 1, "type": "publish", "sdp": "garbage", "tracks": {}})
    assert (await recv(ws, "error"))["code"] == "bad_sdp"
    await ws.send_json({"v": 1, "type": "ping"})
    await recv(ws, "pong")
    await ws.close()
    second, _ = await join(http, server, "teacher", "x2")
    await second.send_json({"v": 1, "type": "subscribe_answer", "sdp": SDP})
    await recv(second, "subscribe_offer")
    await second.close()


async def test_peer_vanishing_mid_negotiation_is_cleaned_up(server, http):
    stayer, _ = await join(http, server, "teacher", "王老师")
    leaver, _ = await join(http, server, "classroom", "掉线班")
    await recv(leaver, "subscribe_offer")
    await leaver.close()  # gone without answering
    left = await recv(stayer, "participant_left")
    assert left["participant"]["name"] == "掉线班"
    async with asyncio.timeout(5):
        while len(server.rooms.get("room1").participants) != 1:
            await asyncio.sleep(0.05)
    await stayer.send_json({"v": 1, "type": "ping"})
    await recv(stayer, "pong")
    await stayer.close()
    async with asyncio.timeout(5):
        while server.rooms.rooms:
            await asyncio.sleep(0.05)


async def test_reconnect_with_same_identity_replaces_old_session(server, http):
    first, _ = await join(http, server, "classroom", "七(1)班", participant_id="class-1")
    second, joined = await join(http, server, "classroom", "七(1)班", participant_id="class-1")
    ended = await recv(first, "ended")
    assert ended["reason"] == "replaced"
    assert list(server.rooms.get("room1").participants) == ["class-1"]
    assert joined["you"]["id"] == "class-1"
    await second.close()


async def test_publish_undeclared_source_is_refused_before_touching_media(server, http):
    ws, _ = await join(http, server, "classroom")
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video", direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    await ws.send_json(
        {"v": 1, "type": "publish", "sdp": pc.localDescription.sdp, "tracks": {"0": "screen"}}
    )
    assert (await recv(ws, "error"))["code"] == "not_allowed"
    await pc.close()
    await ws.close()


async def test_staff_view_needs_an_observer_token(server, http):
    teacher, _ = await join(http, server, "teacher", "王老师")
    async with http.get(f"{server.url}/api/rooms") as r:
        assert r.status == 401
    classroom_token = server.mint("room1", "classroom", "七(1)班")
    async with http.get(f"{server.url}/api/rooms", params={"token": classroom_token}) as r:
        assert r.status == 403
    other_room = server.mint("room2", "observer", "别的巡课")
    async with http.get(f"{server.url}/api/rooms", params={"token": other_room}) as r:
        assert r.status == 200 and await r.json() == []
    own_room = server.mint("room1", "observer", "巡课")
    async with http.get(
        f"{server.url}/api/rooms", headers={"Authorization": f"Bearer {own_room}"}
    ) as r:
        assert [room["id"] for room in await r.json()] == ["room1"]
    await teacher.close()
