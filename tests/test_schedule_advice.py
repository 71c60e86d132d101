"""Bell advice: the smallest bell shifts that let blocked synchronous lessons be placed."""

import dataclasses
import time
from pathlib import Path

import pytest

from scheduler.advice import AM, Shift, advise, blocked, shifted
from scheduler.load import load, load_file
from scheduler.solve import greedy, solve, upper_bound
from tests.schedule_samples import consortium

SAMPLE = Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml"


def sample_math_every_day():
    """The 随县 sample with maths five times a week: 厉山镇第三初级中学 is 10 minutes late in
    the morning and 厉山镇中心学校 leaves early on Friday, so Friday has no aligned period."""
    c = load_file(SAMPLE)
    c.courses["g7-math"] = dataclasses.replace(c.courses["g7-math"], per_week=5)
    return c


def test_nothing_blocked_nothing_advised():
    c = load_file(SAMPLE)
    assert blocked(c) == {} and advise(c) == []


def test_the_late_morning_campus_is_asked_to_ring_five_minutes_earlier():
    c = sample_math_every_day()
    assert blocked(c) == {"g7-math": 1}
    t0 = time.monotonic()
    proposals = advise(c, verify=greedy)
    assert time.monotonic() - t0 < 2.0
    first = proposals[0]
    assert first.shifts == (Shift("lishan-no3", AM, -5),)
    assert first.gains == {"g7-math": 1} and first.fixed == ("g7-math",)
    assert first.placed == (12, 13) and first.newly_placed == {"g7-math": 1}
    assert "厉山镇第三初级中学上午作息提前 5 分钟 (08:10→08:05 起)" in first.text(c)
    assert first.shifts[0].bells(c)[1][:2] == ["08:05", "08:55"]
    assert first.shifts[0].bells(c)[1][4] == "14:30"  # the afternoon stays
    # every proposal changes one campus by 5 minutes: none costs more than the cheapest fix
    assert all(a.cost() == (1, 5, 1) for a in proposals)
    # CP-SAT on the shifted bells places every lesson asked for
    moved = shifted(c, first.shifts)
    plan = solve(moved, time_limit_s=10)
    asked = sum(k.per_week for k in c.courses.values())
    assert plan.proven_optimal and plan.placed == upper_bound(moved) == asked


def test_a_shift_that_would_cost_another_course_its_lessons_is_not_proposed():
    # 厉山镇中心学校 rings 20 minutes after the core; 语文 (core + 烈山湖, 5 minutes late) aligns
    far = {"id": "far", "subject": "数学", "grade": 7, "teacher": "li",
           "classes": ["core-7-1", "far-7-1"], "per_week": 2}
    c = load(consortium(courses=[consortium()["courses"][0], far]))
    assert blocked(c) == {"far": 2}
    proposals = advise(c)
    # moving the core 15 minutes later would misalign 语文 with 烈山湖: only 厉山镇 moves
    assert {s.campus for a in proposals for s in a.shifts} == {"far"}
    first = proposals[0]
    assert first.shifts == (Shift("far", AM, -15),)  # its bells are all morning ones
    assert first.fixed == ("far",)
    moved = shifted(c, first.shifts)
    assert solve(moved, time_limit_s=5).placed == 3 + 2


def test_two_campuses_move_when_one_alone_cannot_help():
    # one campus 10 minutes late, the other 10 early: no single shift of ±20 aligns all three
    data = consortium(courses=[{"id": "x", "subject": "语文", "grade": 7, "teacher": "wang",
                                "classes": ["core-7-1", "lsh-7-1", "far-7-1"]}])
    data["campuses"][1]["bells"] = ["08:10", "09:00"]
    data["campuses"][2]["bells"] = ["07:50", "08:40"]
    data["campuses"][0]["bells"] = ["08:00", "08:50"]
    c = load(data)
    proposals = advise(c)
    assert proposals and all(a.campuses == 2 for a in proposals)
    first = proposals[0]
    assert first.minutes == 10 and first.fixed == ("x",)
    assert upper_bound(shifted(c, first.shifts)) == 1
    assert advise(c, max_campuses=1) == []


def test_shifted_bells_must_not_overlap_or_leave_the_day():
    data = consortium()
    data["campuses"][0]["bells"] = ["11:10", "12:00"]
    c = load(data)
    assert shifted(c, [Shift("core", AM, 10)]).campuses["core"].on(1)[0].start == 11 * 60 + 20
    with pytest.raises(ValueError, match="重叠"):
        shifted(c, [Shift("core", AM, 15)])
    data["campuses"][0]["bells"] = ["06:05"]
    with pytest.raises(ValueError, match="作息超出"):
        shifted(load(data), [Shift("core", AM, -10)])


def test_a_crowded_course_gets_more_aligned_periods_checked_by_re_planning():
    # the morning does not align (10 minutes), the afternoon does; 语文 takes every afternoon,
    # so 数学 has aligned periods on every day but all of them taken: not blocked, crowded
    data = consortium(courses=[
        {"id": "chinese", "subject": "语文", "grade": 7, "teacher": "wang",
         "classes": ["core-7-1", "lsh-7-1"], "per_week": 5},
        {"id": "math", "subject": "数学", "grade": 7, "teacher": "li",
         "classes": ["core-7-1", "lsh-7-1"], "per_week": 3},
    ])
    data["campuses"][0]["bells"] = ["08:00", "14:00"]
    data["campuses"][1]["bells"] = ["08:10", "14:00"]
    c = load(data)
    plan = solve(c, time_limit_s=5)
    assert blocked(c) == {} and plan.placed == 5
    assert advise(c) == []  # nothing blocked and no plan to say what is crowded
    proposals = advise(c, plan=plan)
    first = proposals[0]
    assert first.cost() == (1, 5, 1) and first.shifts[0].session == AM
    assert first.shifts[0] in (Shift("lsh", AM, -5), Shift("core", AM, 5))
    assert first.gains == {"math": 3} and first.fixed == ("math",)
    assert first.placed == (5, 8)
    assert solve(shifted(c, first.shifts), time_limit_s=5).placed == 8


def test_when_no_one_campus_fixes_everything_the_last_proposal_combines_them():
    # 烈山湖 10 minutes late, 厉山镇 10 early; 语文 is with 烈山湖, 数学 with 厉山镇
    data = consortium(courses=[
        {"id": "x", "subject": "语文", "grade": 7, "teacher": "wang",
         "classes": ["core-7-1", "lsh-7-1"], "per_week": 2},
        {"id": "y", "subject": "数学", "grade": 7, "teacher": "li",
         "classes": ["core-7-1", "far-7-1"], "per_week": 2},
    ])
    data["campuses"][0]["bells"] = ["08:00", "08:50"]
    data["campuses"][1]["bells"] = ["08:10", "09:00"]
    data["campuses"][2]["bells"] = ["07:50", "08:40"]
    c = load(data)
    proposals = advise(c)
    assert [a.fixed for a in proposals[:-1]] and all(len(a.fixed) == 1 for a in proposals[:-1])
    together = proposals[-1]
    assert together.fixed == ("x", "y") and together.campuses == 2
    assert set(together.shifts) == {Shift("lsh", AM, -5), Shift("far", AM, 5)}
    moved = shifted(c, together.shifts)
    assert blocked(moved) == {} and solve(moved, time_limit_s=5).placed == 4
