"""server/records.py: a live lesson through the real server leaves its record: the scheduled row
marked held, who joined from which campus and when they left; observers leave no trace."""

from __future__ import annotations

import asyncio
import time

import pytest

from server import records
from server.client import Participant
from server.recording_app import RECORDS

ROOM = "yandi-g7-math"


async def join(server, room: str, role: str, name: str, pid: str, campus: str) -> Participant:
    p = Participant()
    await p.connect(server.url, server.mint(room, role, name, participant_id=pid, campus=campus))
    await p.join()
    return p


async def until(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def fast_health(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "HEALTH_SAMPLE_S", 0.5)  # before the server starts sampling


async def test_a_lesson_leaves_its_record(fast_health, server) -> None:
    store = server.app[RECORDS]
    now = time.time()
    lesson_id = store.schedule(
        ROOM,
        now - 60,
        now + 2400,
        ["lieshanhu", "lishan-central"],
        consortium="suixian-yandi",
        host_campus="yandi",
    )
    t = await join(server, ROOM, "teacher", "王老师", "t", "yandi")
    a = await join(server, ROOM, "classroom", "烈山湖学校七(1)班", "c1", "lieshanhu")
    b = await join(server, ROOM, "classroom", "厉山镇中心学校七(1)班", "c2", "lishan-central")
    watcher = await join(server, ROOM, "observer", "巡课", "o", "")
    b2 = await join(server, ROOM, "classroom", "厉山镇中心学校七(1)班", "c2", "lishan-central")
    db = store.db
    # Each participant's link health is sampled into its attendance row.
    await until(
        lambda: (
            db.execute(
                "SELECT COUNT(*) FROM attendance WHERE good + weak + poor > 0 AND participant='c1'"
            ).fetchone()[0]
            > 0
        )
    )
    await a.close()
    await until(
        lambda: (
            db.execute("SELECT left_at FROM attendance WHERE participant='c1'").fetchone()[0]
            is not None
        )
    )
    for p in (t, b, b2, watcher):
        await p.close()
    await until(
        lambda: (
            db.execute("SELECT ended_at FROM lessons WHERE id=?", (lesson_id,)).fetchone()[0]
            is not None
        )
    )

    lesson = db.execute("SELECT * FROM lessons WHERE id=?", (lesson_id,)).fetchone()
    assert lesson["started_at"] is not None and lesson["teacher"] == "王老师"
    assert db.execute("SELECT COUNT(*) FROM lessons").fetchone()[0] == 1  # no duplicate row
    rows = db.execute(
        "SELECT participant, role, campus, joined_at, left_at FROM attendance"
        " WHERE lesson_id=? ORDER BY id",
        (lesson_id,),
    ).fetchall()
    # The reload of c2 closes its first row and opens a second; the observer is not counted.
    assert [(r["participant"], r["campus"]) for r in rows] == [
        ("t", "yandi"),
        ("c1", "lieshanhu"),
        ("c2", "lishan-central"),
        ("c2", "lishan-central"),
    ]
    assert all(r["left_at"] is not None and r["left_at"] >= r["joined_at"] for r in rows)
    c1 = rows[1]
    assert c1["left_at"] < lesson["ended_at"]


async def test_a_room_off_the_timetable_is_recorded_as_unscheduled(server) -> None:
    store = server.app[RECORDS]
    m = await join(server, "math-group", "member", "张老师", "m1", "lishan-central")
    await m.close()
    await until(
        lambda: (
            store.db.execute("SELECT ended_at FROM lessons WHERE room='math-group'").fetchone()[0]
            is not None
        )
    )
    row = store.db.execute("SELECT * FROM lessons WHERE room='math-group'").fetchone()
    assert row["scheduled_start"] is None and row["kind"] == "meeting"


def test_replace_schedule_keeps_held_and_past_lessons(tmp_path) -> None:
    """The timetable re-writes the week from now on: lessons not held yet are replaced, a
    lesson already held (or opened early) and the past stay, nothing is doubled."""
    store = records.RecordsStore(tmp_path / "records.sqlite3")
    t0 = 1_800_000_000.0
    past = store.schedule("old-past", t0 - 3600, t0 - 1200, ["a"], consortium="c")
    held = store.schedule("held", t0 + 600, t0 + 3000, ["a"], consortium="c")
    store.open_lesson("held", t0 + 100)  # opened early: marked held
    store.schedule("moved", t0 + 7200, t0 + 9600, ["a", "b"], consortium="c")
    store.schedule("other-consortium", t0 + 7200, t0 + 9600, ["x"], consortium="d")

    def lesson(room: str, start: float) -> dict:
        return {"room": room, "start": start, "end": start + 2400, "campuses": ["a", "b"],
                "title": room, "kind": "lesson"}

    new = [lesson("held", t0 + 600), lesson("new", t0 + 10800), lesson("too-late", t0 - 60)]
    for _ in range(2):  # idempotent
        store.replace_schedule("c", t0, new)
    rooms = [r["room"] for r in store.db.execute("SELECT room FROM lessons ORDER BY id")]
    assert rooms == ["old-past", "held", "other-consortium", "new"]
    ids = {r["id"] for r in store.db.execute("SELECT id FROM lessons")}
    assert {past, held} <= ids
    linked = {r["lesson_id"] for r in store.db.execute("SELECT lesson_id FROM lesson_campuses")}
    assert linked == ids
    store.close()
