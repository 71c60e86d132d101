"""The replay library per consortium (教联体), through the real server: recordings of two
consortia, their consortium known from the config (the sample consortium's lesson), from the
timetable's lesson row, or from the teacher's token; each viewer lists, opens, plays and
comments on its own consortium's recordings only; the platform's staff sees all; a token
whose consortium claim was forged or altered is refused."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import aiohttp
import jwt
import pytest

from server.recording_app import RECORDS
from server.tokens import TokenIssuer
from tests.signalling_client import recv

OTHER = "huarong-shiyan"  # the second consortium
DEMO_ROOM = "yandi-g7-math"  # the sample consortium's lesson (its id from the config)
TIMETABLED_ROOM = "hr-g8-yuwen-20261207-0800"  # a room the timetable put in OTHER
TOKEN_ROOM = "hr-english-group"  # a room known only through its teacher's token


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def record(http, server, room: str, teacher_token: str) -> dict[str, Any]:
    """The teacher joins the room, switches recording on, then off: the recording's meta."""
    ws = await http.ws_connect(f"{server.ws_url}?token={teacher_token}")
    await ws.send_json({"v": 1, "type": "join"})
    await recv(ws, "joined")
    api = f"{server.url}/api/recording/{room}"
    async with http.post(f"{api}/start", params={"token": teacher_token}) as r:
        assert r.status == 200, await r.text()
    await asyncio.sleep(1.1)  # recording ids are per second
    async with http.post(f"{api}/stop", params={"token": teacher_token}) as r:
        assert r.status == 200, await r.text()
        meta = await r.json()
    await ws.close()
    return meta


def altered(token: str, **claims: str) -> str:
    """The same signature over a payload with other claims: what a tamperer would send."""
    header, payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(claims)
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()
    return f"{header}.{raw}.{signature}"


async def test_each_consortium_sees_its_own_recordings_only(server, http) -> None:
    demo = server.settings.demo.id
    assert demo != OTHER
    server.app[RECORDS].schedule(
        TIMETABLED_ROOM, time.time() - 3600, time.time() + 3600, ["shiyan"], consortium=OTHER
    )
    mint = server.mint
    recs = {
        "demo": await record(
            http, server, DEMO_ROOM, mint(DEMO_ROOM, "teacher", "王老师", consortium=demo)
        ),
        # the timetable names the consortium: the teacher's token need not
        "timetabled": await record(
            http, server, TIMETABLED_ROOM, mint(TIMETABLED_ROOM, "teacher", "刘老师")
        ),
        "token": await record(
            http, server, TOKEN_ROOM, mint(TOKEN_ROOM, "teacher", "陈老师", consortium=OTHER)
        ),
    }
    assert recs["demo"]["consortium"] == demo
    assert recs["timetabled"]["consortium"] == OTHER
    assert recs["token"]["consortium"] == OTHER
    # the records learn it too: the unscheduled room's lesson row counts in OTHER's report
    assert server.app[RECORDS].consortium_of(TOKEN_ROOM) == OTHER
    ids = {key: meta["id"] for key, meta in recs.items()}

    demo_teacher = mint("yandi-g8-math", "teacher", "炎帝 李老师", consortium=demo)
    other_member = mint("hr-math-group", "member", "实验 张老师", consortium=OTHER)
    demo_staff = mint("*", "observer", "随县教务", consortium=demo)
    platform_staff = mint("*", "observer", "平台运维")
    no_consortium = mint("some-room", "teacher", "无归属老师")
    own_room_teacher = mint(TIMETABLED_ROOM, "teacher", "刘老师")  # no claim: its own room
    base = f"{server.url}/api/recordings"

    async def library(token: str) -> set[str]:
        async with http.get(base, params={"token": token}) as r:
            assert r.status == 200
            return {m["id"] for m in await r.json()}

    assert await library(demo_teacher) == {ids["demo"]}
    assert await library(demo_staff) == {ids["demo"]}
    assert await library(other_member) == {ids["timetabled"], ids["token"]}
    assert await library(platform_staff) == set(ids.values())
    assert await library(no_consortium) == set()
    assert await library(own_room_teacher) == {ids["timetabled"]}

    async def status(method: str, path: str, token: str, body: Any = None) -> int:
        async with http.request(method, f"{base}/{path}", params={"token": token}, json=body) as r:
            if r.status == 403:
                assert (await r.json())["message"] == "无权查看该录像。"
            return r.status

    # Opening, playing and the comments of the other consortium's recording: refused.
    for path in ("", "/media", "/comments"):
        assert await status("GET", f"{ids['demo']}{path}", other_member) == 403
        assert await status("GET", f"{ids['token']}{path}", demo_teacher) == 403
    assert await status("GET", ids["demo"], demo_teacher) == 200
    assert await status("GET", ids["token"], other_member) == 200

    # Review comments (听课评课): by the consortium's teachers, read within it only.
    comment = {"t": 0.5, "text": "情境导入自然。"}
    assert await status("POST", f"{ids['demo']}/comments", demo_teacher, comment) == 201
    assert await status("POST", f"{ids['demo']}/comments", other_member, comment) == 403
    assert await status("POST", f"{ids['token']}/comments", demo_teacher, comment) == 403
    async with http.get(f"{base}/{ids['demo']}/comments", params={"token": demo_staff}) as r:
        assert [c["text"] for c in await r.json()] == ["情境导入自然。"]
    async with http.get(f"{base}/{ids['token']}/comments", params={"token": other_member}) as r:
        assert await r.json() == []

    # Forged: signed with another secret, or a real token's consortium altered; both 401.
    forger = TokenIssuer("not-the-server-secret-0123456789-xyz")
    forged = forger.mint("*", "observer", "冒充教务", consortium=demo)
    tampered = altered(other_member, consortium=demo)
    bad_type = jwt.encode(
        {**jwt.decode(demo_teacher, options={"verify_signature": False}), "consortium": 7},
        server.settings.secret,
        algorithm="HS256",
    )
    for token in (forged, tampered, bad_type):
        async with http.get(base, params={"token": token}) as r:
            assert r.status == 401
            assert (await r.json())["code"] == "bad_token"
        async with http.get(f"{base}/{ids['demo']}/media", params={"token": token}) as r:
            assert r.status == 401
