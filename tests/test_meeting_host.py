"""The host of a research meeting (real server, real WebSockets): the host school's teacher
hosts on arrival; only the host mutes, gives the floor or hands over; the new host's controls
work at once and everyone is told who hosts; a host who leaves hands over by itself (the
teacher still present, else the member present longest); the teacher coming back takes the
role only from a member who got it by default, never from one it was handed to."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.signalling_client import recv

ROOM = "math-group"


async def host_is(ws: aiohttp.ClientWebSocketResponse, host: str | None) -> dict[str, Any]:
    """The `state` broadcasts until one names `host` as the host."""
    while True:
        state = (await recv(ws, "state"))["state"]
        if state["host"] == host:
            return state


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def join(http, server, role: str, name: str, pid: str):
    token = server.mint(ROOM, role, name, participant_id=pid)
    ws = await http.ws_connect(f"{server.ws_url}?token={token}")
    await ws.send_json({"v": 1, "type": "join"})
    return ws, await recv(ws, "joined")


async def send(ws, kind: str, **fields) -> None:
    await ws.send_json({"v": 1, "type": kind, **fields})


async def test_hand_over_mute_and_automatic_hand_over(server, http):
    wang, joined = await join(http, server, "teacher", "炎帝学校 王老师", "wang")
    assert joined["state"]["host"] == "wang"  # the host school's teacher hosts on arrival
    li, joined = await join(http, server, "member", "烈山湖学校 李老师", "li")
    assert joined["state"]["host"] == "wang"
    zhang, _ = await join(http, server, "member", "厉山镇中心学校 张老师", "zhang")

    # A member who does not host may not mute, give the floor, nor hand over: a clear error.
    for kind, fields, words in (
        ("mute", {"participant": "zhang", "muted": True}, "静音"),
        ("call_on", {"participant": "zhang"}, "发言"),
        ("host", {"participant": "li"}, "移交"),
    ):
        await send(li, kind, **fields)
        err = await recv(li, "error")
        assert (
            err["code"] == "not_host" and "只有主持人" in err["message"] and words in err["message"]
        )
        assert err["detail"]
    assert server.rooms.get(ROOM).host == "wang" and not server.rooms.get(ROOM).muted

    # Bad hand-overs: to nobody, to oneself; the role stays.
    await send(wang, "host", participant="nobody")
    err = await recv(wang, "error")
    assert err["code"] == "bad_message" and "在场的老师" in err["message"]
    await send(wang, "host", participant="wang")
    assert (await recv(wang, "error"))["code"] == "bad_message"
    await send(wang, "host")  # no participant: refused by the protocol
    assert (await recv(wang, "error"))["code"] == "bad_message"

    # The host mutes 张老师, then hands over to 李老师: everyone is told.
    await send(wang, "mute", participant="zhang", muted=True)
    assert (await recv(zhang, "muted"))["muted"] is True
    await send(wang, "host", participant="li")
    for ws in (wang, li, zhang):
        state = await host_is(ws, "li")
        assert state["muted"] == ["zhang"]

    # The new host's controls work at once; the old host's do not any more.
    await send(li, "mute", participant="zhang", muted=False)
    assert (await recv(zhang, "muted"))["muted"] is False
    await send(li, "call_on", participant="wang")  # a host may give the teacher the floor
    state = (await recv(wang, "state"))["state"]
    while state["called_on"] != "wang":
        state = (await recv(wang, "state"))["state"]
    await send(wang, "mute", participant="zhang", muted=True)
    err = await recv(wang, "error")
    assert err["code"] == "not_host" and "只有主持人" in err["message"]
    # The former host raises a hand like a member; the host hands it back, which lowers it.
    await send(wang, "hand", raised=True)
    state = await recv(li, "state")
    while "wang" not in state["state"]["hands"]:
        state = await recv(li, "state")
    await send(li, "host", participant="wang")
    state = await host_is(zhang, "wang")
    assert "wang" not in state["hands"]
    await send(wang, "host", participant="li")
    await host_is(zhang, "li")

    # 李老师 (the host) leaves: the teacher still present takes over by itself.
    await li.close()
    await host_is(zhang, "wang")
    # The teacher leaves too: the member present longest (张老师, alone now) hosts.
    await wang.close()
    state = await host_is(zhang, "zhang")
    assert server.rooms.get(ROOM).host == "zhang"
    await send(zhang, "mute", participant="zhang", muted=True)  # not oneself
    assert (await recv(zhang, "error"))["code"] == "bad_message"

    # 王老师 comes back: 张老师 hosts only by default, so the host school's teacher takes over.
    wang, joined = await join(http, server, "teacher", "炎帝学校 王老师", "wang")
    assert joined["state"]["host"] == "wang"
    await host_is(zhang, "wang")
    # Handed over deliberately, the role stays with the member when the teacher reconnects.
    await send(wang, "host", participant="zhang")
    await host_is(zhang, "zhang")
    await wang.close()
    wang, joined = await join(http, server, "teacher", "炎帝学校 王老师", "wang")
    assert joined["state"]["host"] == "zhang"
    await send(wang, "mute", participant="zhang", muted=True)
    assert (await recv(wang, "error"))["code"] == "not_host"
    for ws in (wang, zhang):
        await ws.close()


async def test_members_without_a_teacher_have_a_host_and_classrooms_never_host(server, http):
    a, joined = await join(http, server, "member", "李老师", "a")
    assert joined["state"]["host"] == "a"  # early members are not left without a host
    b, joined = await join(http, server, "member", "张老师", "b")
    assert joined["state"]["host"] == "a"
    observer_token = server.mint(ROOM, "observer", "教务", participant_id="staff")
    observer = await http.ws_connect(f"{server.ws_url}?token={observer_token}")
    await send(observer, "join")
    await recv(observer, "joined")
    await send(observer, "host", participant="a")  # observers may not host at all
    assert (await recv(observer, "error"))["code"] == "not_allowed"
    await send(a, "host", participant="staff")  # nor be handed the role
    assert (await recv(a, "error"))["code"] == "bad_message"
    await a.close()
    await host_is(b, "b")
    for ws in (b, observer):
        await ws.close()

    # A lesson: the teacher hosts; a class is never handed the role, even when the teacher goes.
    teacher, _ = await join(http, server, "teacher", "王老师", "t")
    room_c = server.mint(ROOM, "classroom", "七(1)班", participant_id="c")
    klass = await http.ws_connect(f"{server.ws_url}?token={room_c}")
    await send(klass, "join")
    assert (await recv(klass, "joined"))["state"]["host"] == "t"
    await send(teacher, "host", participant="c")
    assert (await recv(teacher, "error"))["code"] == "bad_message"
    await teacher.close()
    await host_is(klass, None)
    await klass.close()
