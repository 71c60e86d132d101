"""The timetable drives the rooms: a classroom's standing link, on a real server whose timetable
clock is set by the test, lands in the lesson scheduled for now (a real WebSocket join into
the room named after the slot), and gets the countdown when nothing is on. A teacher's standing
link leads to their research meeting when it is on. The week's lessons are in the records."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import aiohttp

from server import standing
from server.recording_app import RECORDS
from server.timetable import JOIN_EARLY, TZ, room_name
from server.timetable_app import TIMETABLE, keep_rooms
from tests.conftest import make_settings, running
from tests.signalling_client import recv

CID = "suixian-yandi"
KLASS = "lishan-no3-7-1"
MONDAY = dt.date(2027, 3, 1)  # a Monday of the spring term


def at(day: int, minute: int, plus: dt.timedelta = dt.timedelta()) -> dt.datetime:
    date = MONDAY + dt.timedelta(days=day - 1)
    return dt.datetime.combine(date, dt.time(minute // 60, minute % 60), TZ) + plus


async def test_standing_link_joins_the_lesson_on_now(tmp_path: Path) -> None:
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings, now=lambda: clock[0]) as srv, aiohttp.ClientSession() as http:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        streamed = [s for s in tt.plan.lessons if not tt.consortium.courses[s.item].local]
        lesson = min((s for s in streamed if any(k == KLASS for k, _ in s.class_periods)),
                     key=lambda s: (s.day, s.start))
        clock[0] = at(lesson.day, lesson.start, dt.timedelta(minutes=5))
        room = room_name(lesson.item, MONDAY + dt.timedelta(days=lesson.day - 1), lesson.start)
        token = standing.mint(srv.issuer, tt, "class", KLASS)

        # The lesson's room exists at its time, before anyone joins (what the server's
        # ticker does every few seconds).
        opened: set[str] = set()
        keep_rooms(srv.app[TIMETABLE], srv.rooms, opened)
        assert room in opened and srv.rooms.get(room) is not None
        assert srv.rooms.get(room).title.startswith("七年级")

        # The standing link opens the classroom page.
        async with http.get(f"{srv.url}/class/{KLASS}", params={"token": token}) as r:
            assert r.status == 200 and "classroom.js" in await r.text()

        async with http.get(f"{srv.url}/api/timetable/now", params={"token": token}) as r:
            assert r.status == 200
            answer = await r.json()
        now = answer["now"]
        assert now["room"] == room and now["page"] == "classroom" and now["role"] == "classroom"
        assert now["ends_in_s"] == (lesson.end - lesson.start - 5) * 60
        assert answer["next"] is not None and answer["next"]["room"] != room

        # The minted token joins that room, as the class, with the timetable's title.
        ws = await http.ws_connect(f"{srv.ws_url}?token={now['token']}")
        await ws.send_json({"v": 1, "type": "join"})
        joined = await recv(ws, "joined", 10, errors=True)
        assert joined["type"] == "joined", joined
        assert joined["room"]["id"] == room
        assert joined["room"]["title"] == now["title"]
        assert tt.consortium.courses[lesson.item].subject in now["title"]
        klass = tt.consortium.classes[KLASS]
        assert joined["you"]["name"] == klass.name and joined["you"]["campus"] == klass.campus
        assert srv.rooms.get(room) is not None
        await ws.close()

        # The standing token itself joins nothing.
        ws = await http.ws_connect(f"{srv.ws_url}?token={token}")
        refused = await recv(ws, "joined", 10, errors=True)
        assert refused["type"] == "error" and refused["code"] == "bad_token"
        await ws.close()

        # After the bell: the empty room is gone; nothing on, the countdown to the next lesson.
        clock[0] = at(lesson.day, lesson.end, dt.timedelta(seconds=30))
        keep_rooms(srv.app[TIMETABLE], srv.rooms, opened)
        assert srv.rooms.get(room) is None
        async with http.get(f"{srv.url}/api/timetable/now", params={"token": token}) as r:
            answer = await r.json()
        nxt = answer["next"]
        assert answer["now"] is None and nxt is not None
        start = dt.datetime.fromisoformat(nxt["start"])
        assert nxt["starts_in_s"] == round((start - clock[0]).total_seconds())
        assert nxt["starts_in_s"] > JOIN_EARLY.total_seconds()
        assert nxt["opens_in_s"] == nxt["starts_in_s"] - JOIN_EARLY.total_seconds()
        assert "token" not in nxt

        # The week's lessons are in the records, each expecting its campuses.
        records = srv.app[RECORDS]
        rows = records.db.execute(
            "SELECT room, kind FROM lessons WHERE consortium=? AND scheduled_start IS NOT NULL",
            (CID,),
        ).fetchall()
        assert room in {r["room"] for r in rows}
        assert {r["kind"] for r in rows} == {"lesson", "meeting"}


async def test_teacher_standing_link_leads_to_the_meeting(tmp_path: Path) -> None:
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings, now=lambda: clock[0]) as srv, aiohttp.ClientSession() as http:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        meeting = tt.plan.meetings[0]
        member = tt.consortium.groups[meeting.item].members[0]
        token = standing.mint(srv.issuer, tt, "teacher", member)
        clock[0] = at(meeting.day, meeting.start, dt.timedelta(minutes=1))
        async with http.get(f"{srv.url}/teach/{member}", params={"token": token}) as r:
            assert "meeting.js" in await r.text()
        async with http.get(f"{srv.url}/api/timetable/now", params={"token": token}) as r:
            now = (await r.json())["now"]
        assert now["page"] == "meeting" and now["role"] == "member" and now["kind"] == "meeting"
        ws = await http.ws_connect(f"{srv.ws_url}?token={now['token']}")
        await ws.send_json({"v": 1, "type": "join"})
        joined = await recv(ws, "joined", 10, errors=True)
        assert joined["room"]["id"] == room_name(
            meeting.item, MONDAY + dt.timedelta(days=meeting.day - 1), meeting.start
        )
        await ws.close()

        # Outside the meeting, the same link opens the teacher page.
        clock[0] = at(meeting.day, meeting.end, dt.timedelta(minutes=1))
        async with http.get(f"{srv.url}/teach/{member}", params={"token": token}) as r:
            assert "teacher.js" in await r.text()

        # A forged standing link is refused with a reason.
        forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        async with http.get(f"{srv.url}/api/timetable/now", params={"token": forged}) as r:
            assert r.status == 401 and (await r.json())["code"] == "bad_token"
