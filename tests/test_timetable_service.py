"""The timetable service on the sample consortium: the matcher's job, persistence across a
restart, edits and locks that change nothing when refused, and what is on now / next."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from scheduler.model import Lock
from server.timetable import JOIN_EARLY, TZ, EditError, TimetableService, room_name
from server.timetable_store import SqliteTimetableStore

SAMPLE = Path(__file__).resolve().parent.parent / "config" / "consortia" / "suixian-yandi.toml"
CID = "suixian-yandi"


def service(tmp_path: Path, **kw) -> TimetableService:
    return TimetableService([SAMPLE], SqliteTimetableStore(DB(tmp_path)), **kw)


def DB(tmp_path: Path) -> Path:  # noqa: N802 - a path, named like the constant it stands for
    return tmp_path / "timetable.sqlite"


def stored(tmp_path: Path):  # noqa: ANN201 - what the server saved, read back independently
    saved = SqliteTimetableStore(DB(tmp_path)).load(CID)
    assert saved is not None
    return saved


async def finished(job, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while job.state == "running":
        assert asyncio.get_running_loop().time() < deadline, "solve did not finish"
        await asyncio.sleep(0.05)


async def test_solve_job_reports_progress_and_survives_restart(tmp_path: Path) -> None:
    svc = service(tmp_path, solve_seconds=10)
    tt = svc.get(CID)
    assert tt is not None and tt.plan.status == "greedy"  # instant preview at start
    job = tt.start_solve()
    assert job.greedy["lessons"] > 0
    assert tt.start_solve() is job  # one run at a time
    await finished(job)
    assert job.state == "done", job.error
    assert job.progress and job.progress[-1]["objective"] > 0
    assert tt.plan.proven_optimal and tt.plan.status == "OPTIMAL"
    before = [(s.item, s.day, s.at) for s in tt.plan.lessons + tt.plan.meetings]
    await svc.close()

    again = service(tmp_path).get(CID)
    assert again is not None
    assert again.plan.status == "OPTIMAL"
    assert [(s.item, s.day, s.at) for s in again.plan.lessons + again.plan.meetings] == before


async def test_bad_edit_changes_nothing_and_names_the_line(tmp_path: Path) -> None:
    svc = service(tmp_path)
    tt = svc.get(CID)
    assert tt is not None
    saved = stored(tmp_path)
    plan_before = tt.plan
    lines = tt.source.splitlines()
    n = lines.index('teacher = "liu"')  # course g7-english's teacher
    lines[n] = 'teacher = "nobody"'
    with pytest.raises(EditError) as err:
        tt.edit_source("\n".join(lines))
    assert err.value.line == n + 1
    assert "nobody" in err.value.message and f"第 {n + 1} 行" in err.value.message
    assert tt.source == SAMPLE.read_text(encoding="utf-8")
    assert tt.plan is plan_before
    assert stored(tmp_path) == saved

    with pytest.raises(EditError) as err:
        tt.edit_source(tt.source.replace('id = "suixian-yandi"', 'id = "other"', 1))
    assert "编号" in err.value.message


async def test_good_edit_replans_and_persists(tmp_path: Path) -> None:
    svc = service(tmp_path)
    tt = svc.get(CID)
    assert tt is not None
    text = tt.source.replace("per_week = 2", "per_week = 1", 1)  # g7-english
    plan = tt.edit_source(text)
    assert sum(s.item == "g7-english" for s in plan.lessons) == 1
    assert stored(tmp_path).source == text
    again = service(tmp_path).get(CID)
    assert again is not None and again.source == text
    assert sum(s.item == "g7-english" for s in again.plan.lessons) == 1


async def test_locks_hold_or_are_refused_with_nothing_changed(tmp_path: Path) -> None:
    svc = service(tmp_path)
    tt = svc.get(CID)
    assert tt is not None
    math = next(s for s in tt.plan.lessons if s.item == "g7-math")
    lock = Lock("g7-math", math.day, math.at)
    tt.add_lock(lock)
    assert tt.locks == [lock] and tt.locked(math)
    # English's classes are in the math lesson: the same slot cannot hold both.
    english = [s for s in tt.consortium.courses if s == "g7-english"]
    assert english
    clash = Lock("g7-english", math.day, math.at)
    with pytest.raises(EditError) as err:
        tt.add_lock(clash)
    assert err.value.code == "lock_conflict"
    assert tt.locks == [lock]
    with pytest.raises(EditError):
        tt.add_lock(Lock("no-such-course", 1, 1))
    # Locks survive a restart and bind the matcher.
    again = service(tmp_path).get(CID)
    assert again is not None and again.locks == [lock]
    job = again.start_solve()
    await finished(job)
    assert (math.item, math.day, math.at) in {(s.item, s.day, s.at) for s in again.plan.lessons}
    again.remove_lock(lock)
    assert again.locks == []
    with pytest.raises(EditError):
        again.remove_lock(lock)


def _class_lesson(tt, klass: str):
    streamed = [s for s in tt.plan.lessons if not tt.consortium.courses[s.item].local]
    return min(
        (s for s in streamed if any(k == klass for k, _ in s.class_periods)),
        key=lambda s: (s.day, s.start),
    )


async def test_now_and_next_in_shanghai_time(tmp_path: Path) -> None:
    tt = service(tmp_path).get(CID)
    assert tt is not None
    klass = "lieshanhu-7-1"
    first = _class_lesson(tt, klass)
    monday = dt.date(2026, 12, 7)  # a Monday
    day = monday + dt.timedelta(days=first.day - 1)
    start = dt.datetime.combine(day, dt.time(first.start // 60, first.start % 60), TZ)

    # Ten minutes into the lesson, asked in UTC: the Shanghai lesson is on.
    now, later = tt.now_and_next(start.astimezone(dt.UTC) + dt.timedelta(minutes=10), klass=klass)
    assert now is not None
    role, occ = now
    assert role == "classroom" and occ.item == first.item
    assert occ.room == room_name(first.item, day, first.start)
    assert occ.room.endswith(f"-{day:%Y%m%d}-{first.start // 60:02d}{first.start % 60:02d}")
    assert later is not None and later[1].start >= occ.end

    # Just before the bell (inside the join margin) it counts as on; earlier it is next.
    assert tt.now_and_next(start - JOIN_EARLY + dt.timedelta(seconds=1), klass=klass)[0]
    none, upcoming = tt.now_and_next(start - JOIN_EARLY - dt.timedelta(minutes=1), klass=klass)
    assert none is None and upcoming is not None and upcoming[1].room == occ.room

    # On Saturday nothing is on; the next is the first lesson of the coming week.
    saturday = dt.datetime.combine(monday + dt.timedelta(days=5), dt.time(10), TZ)
    none, upcoming = tt.now_and_next(saturday, klass=klass)
    assert none is None and upcoming is not None
    next_day = monday + dt.timedelta(days=7 + first.day - 1)
    assert upcoming[1].room == room_name(first.item, next_day, first.start)


async def test_teacher_sees_lessons_and_meetings(tmp_path: Path) -> None:
    tt = service(tmp_path).get(CID)
    assert tt is not None
    meeting = tt.plan.meetings[0]
    day = dt.date(2026, 12, 7) + dt.timedelta(days=meeting.day - 1)
    at = dt.datetime.combine(day, dt.time(meeting.start // 60, meeting.start % 60), TZ)
    for member in tt.consortium.groups[meeting.item].members:
        now, _ = tt.now_and_next(at + dt.timedelta(minutes=1), teacher=member)
        assert now is not None and now[0] == "member" and now[1].kind == "meeting"
    lesson = next(s for s in tt.plan.lessons if s.item == "g7-math")
    day = dt.date(2026, 12, 7) + dt.timedelta(days=lesson.day - 1)
    at = dt.datetime.combine(day, dt.time(lesson.start // 60, lesson.start % 60), TZ)
    now, _ = tt.now_and_next(at, teacher="wang")
    assert now is not None and now[0] == "teacher" and now[1].item == "g7-math"


async def test_week_views(tmp_path: Path) -> None:
    tt = service(tmp_path).get(CID)
    assert tt is not None
    klass = tt.week(klass="lishan-no3-7-1")
    assert klass["entries"]
    assert all(any(k["id"] == "lishan-no3-7-1" for k in e["classes"]) for e in klass["entries"])
    # Its own bells: the class's periods start 10 minutes after the core school's.
    starts = {p["start"] for p in klass["periods"]}
    assert all(e["shown_start"] in starts for e in klass["entries"])
    assert all(e["row"] > 0 for e in klass["entries"])
    teacher = tt.week(teacher="wang")
    kinds = {e["kind"] for e in teacher["entries"]}
    assert kinds == {"sync", "meeting"}
    campus = tt.week(campus="lieshanhu")
    items = {e["item"] for e in campus["entries"]}
    assert {"g7-english", "music-lieshanhu", "math-research"} <= items
    assert "music-lishan-no3" not in items
    with pytest.raises(KeyError):
        tt.week(klass="nope")


async def test_research_meetings_rotate_their_host_week_by_week(tmp_path: Path) -> None:
    """四定: a fixed time and place, a rotating host. The same meeting slot two weeks running
    is hosted by the next campus in turn."""
    tt = service(tmp_path).get(CID)
    assert tt is not None and tt.plan.meetings
    slot = tt.plan.meetings[0]
    group = tt.consortium.groups[slot.item]
    monday = dt.date(2026, 12, 7)
    day = monday + dt.timedelta(days=slot.day - 1)
    hosts = [tt.occurrence(slot, day + dt.timedelta(weeks=w)).host_campus for w in range(4)]
    rotation = group.hosts or tuple(dict.fromkeys(
        tt.consortium.teachers[m].campus for m in group.members))
    assert len(set(hosts)) == min(4, len(rotation)) > 1
