"""The weekly plan as dated happenings: what a class or teacher has on now, and next."""

import datetime
from pathlib import Path

import pytest

from scheduler.load import load_file
from scheduler.model import Lock
from scheduler.solve import solve
from scheduler.week import LESSON, MEETING, TZ, occurrences, on_now, room_id

SAMPLE = Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"
MONDAY = datetime.date(2027, 3, 1)


def planned():
    """The 随县 sample with maths locked on Monday's 5th period (14:30 everywhere), Chinese on
    Tuesday's 1st (炎帝 08:00, 烈山湖 08:05) and the maths meeting on Wednesday at 16:10."""
    c = load_file(SAMPLE)
    c.locks += [Lock("g7-math", 1, 5), Lock("g7-chinese", 2, 1),
                Lock("math-research", 3, 16 * 60 + 10)]
    return c, solve(c, time_limit_s=10)


def at(day: int, hh: int, mm: int) -> datetime.datetime:
    return datetime.datetime.combine(MONDAY + datetime.timedelta(days=day - 1),
                                     datetime.time(hh, mm), TZ)


def test_a_week_of_occurrences_matches_the_plan():
    c, plan = planned()
    week = occurrences(c, plan, at(1, 0, 0), at(8, 0, 0))
    assert len(week) == len(plan.lessons) + len(plan.meetings)
    assert week == sorted(week, key=lambda o: (o.start, o.room))
    math = next(o for o in week if o.item == "g7-math" and o.start == at(1, 14, 30))
    assert math.kind == LESSON and math.room == room_id(c, "g7-math") == "suixian-yandi.g7-math"
    assert math.host_campus == "yandi" and set(math.campuses) == set(c.campuses)
    assert math.teachers == ("wang",) and "数学" in math.title
    # naive datetimes are Shanghai time; the next week repeats the first
    again = occurrences(c, plan, datetime.datetime(2027, 3, 8), datetime.datetime(2027, 3, 15))
    assert [o.start - datetime.timedelta(days=7) for o in again] == [o.start for o in week]


def test_a_class_joins_at_its_own_bells_and_sees_what_comes_next():
    c, plan = planned()
    # Tuesday's Chinese: 炎帝 at 08:00, 烈山湖 at 08:05 (five minutes later, 35 of 40 overlap)
    chinese = next(o for o in occurrences(c, plan, at(2, 0, 0), at(3, 0, 0))
                   if o.item == "g7-chinese" and o.start == at(2, 8, 0))
    assert chinese.when("lieshanhu-7-1") == (at(2, 8, 5), at(2, 8, 45))
    now, nxt = on_now(c, plan, at(2, 8, 2), class_id="lieshanhu-7-1")
    assert now is None and nxt == chinese  # its period has not begun: a countdown of 3 minutes
    now, _ = on_now(c, plan, at(2, 8, 42), class_id="lieshanhu-7-1")
    assert now == chinese
    now, _ = on_now(c, plan, at(2, 8, 42), class_id="yandi-7-1")
    assert now is None  # 炎帝 rang at 08:40
    now, nxt = on_now(c, plan, at(1, 14, 35), teacher_id="wang")
    assert now is not None and now.item == "g7-math"
    assert nxt is not None and nxt.start > at(1, 15, 10)


def test_a_meeting_s_host_rotates_with_the_term_weeks():
    c, plan = planned()
    hosts = []
    for week in range(4):
        start = at(3, 0, 0) + datetime.timedelta(weeks=week)
        (m,) = [o for o in occurrences(c, plan, start, start + datetime.timedelta(days=1),
                                       term_start=MONDAY) if o.kind == MEETING]
        assert m.start.time() == datetime.time(16, 10) and set(m.teachers) == {"wang", "liu"}
        hosts.append(m.host_campus)
    assert hosts == ["yandi", "lieshanhu", "lishan-central", "lishan-no3"]
    now, _ = on_now(c, plan, at(3, 16, 20), teacher_id="liu", term_start=MONDAY)
    assert now is not None and now.kind == MEETING and "烈山湖" not in now.title
    with pytest.raises(ValueError):
        on_now(c, plan, at(3, 16, 20))
