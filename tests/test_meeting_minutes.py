"""server/meeting.py: minutes saved against the version they started from; a stale save is
refused with the current text; who may read and edit; minutes kept beside a recording."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from server.meeting import Minutes
from server.records import RecordsStore

ROOM = "math-group"


async def test_minutes_versions_and_roles(server) -> None:
    url = f"{server.url}/api/meetings/{ROOM}/minutes"
    a = server.mint(ROOM, "member", "李老师")
    b = server.mint(ROOM, "teacher", "王老师")
    async with aiohttp.ClientSession() as http:

        async def put(token: str, body: object) -> tuple[int, dict]:
            async with http.put(url, params={"token": token}, json=body) as r:
                return r.status, await r.json()

        async with http.get(url, params={"token": a}) as r:
            assert (await r.json())["version"] == 0
        status, saved = await put(a, {"text": "主题：导入", "version": 0})
        assert status == 200 and saved["version"] == 1 and saved["updated_by"] == "李老师"
        status, saved = await put(b, {"text": "主题：导入\n结论：情境", "version": 1})
        assert status == 200 and saved["version"] == 2
        # 李老师 still edits from version 1: refused, with what 王老师 saved.
        status, body = await put(a, {"text": "主题：别的", "version": 1})
        assert status == 409 and body["code"] == "conflict" and body["message"]
        assert body["current"]["text"] == "主题：导入\n结论：情境"
        assert (await put(a, {"text": 5, "version": 2}))[0] == 400
        assert (await put(a, {"text": "x", "version": True}))[0] == 400
        assert (await put(a, {"text": "长" * 20_001, "version": 2}))[0] == 400
        staff = server.mint("*", "observer", "教务")
        assert (await put(staff, {"text": "x", "version": 2}))[0] == 403
        async with http.get(url, params={"token": staff}) as r:
            assert r.status == 200 and (await r.json())["version"] == 2
        other = server.mint("other-group", "member", "外校老师")
        async with http.get(url, params={"token": other}) as r:
            assert r.status == 403
        assert (await put(other, {"text": "x", "version": 2}))[0] == 403
        async with http.get(url, params={"token": "forged"}) as r:
            assert r.status == 401


def test_minutes_belong_to_one_meeting_and_are_kept_with_its_recording(tmp_path: Path) -> None:
    store = RecordsStore(tmp_path / "records.sqlite3")
    minutes = Minutes(store)
    first = store.open_lesson(ROOM, 1000.0, kind="meeting")
    minutes.save(ROOM, "第一次教研纪要", 0, "王老师")
    store.close_lesson(first, 2000.0)
    directory = tmp_path / "rec"
    directory.mkdir()
    minutes.keep_with({"room": ROOM}, directory)
    assert (directory / "minutes.md").read_text(encoding="utf-8") == "第一次教研纪要"
    store.open_lesson(ROOM, 9000.0, kind="meeting")  # next week's meeting starts blank
    assert minutes.get(ROOM)["text"] == "" and minutes.get(ROOM)["version"] == 0


async def test_a_full_meeting_refuses_one_more_member(server, monkeypatch) -> None:
    from server import meeting
    from server.client import Participant, SignallingError

    monkeypatch.setattr(meeting, "MAX_MEETING_MEMBERS", 2)
    joined = []
    try:
        for i in range(2):
            p = Participant()
            await p.connect(
                server.url, server.mint(ROOM, "member", f"老师{i}", participant_id=f"m{i}")
            )
            await p.join()
            joined.append(p)
        host = Participant()  # the host is not a member: always fits
        await host.connect(server.url, server.mint(ROOM, "teacher", "主持人", participant_id="h"))
        await host.join()
        joined.append(host)
        extra = Participant()
        await extra.connect(server.url, server.mint(ROOM, "member", "老师3", participant_id="m3"))
        joined.append(extra)
        try:
            await extra.join()
            raise AssertionError("a third member joined a meeting of two")
        except SignallingError as exc:
            assert exc.code == "room_full" and "人数已满" in exc.message
        again = Participant()  # m0 reconnecting (a reload) is still welcome
        await again.connect(server.url, server.mint(ROOM, "member", "老师0", participant_id="m0"))
        await again.join()
        joined.append(again)
    finally:
        for p in joined:
            await p.close()
