"""Consortia sharing a teacher are solved together; the others apart."""

import pytest

from scheduler.county import linked, merge, solve_county
from scheduler.load import ModelError, load
from scheduler.solve import solve

ZHAO = {"id": "zhao", "name": "赵老师", "campus": "hub", "subjects": ["音乐"], "itinerant": True}
HUB = {"id": "hub", "name": "中心校", "bells": ["08:00", "08:50"]}


def one(cid: str, campus: str, teacher: dict) -> dict:
    """The county's 中心校 (the teacher's home) and one campus whose only period a day holds
    `teacher`'s in-person music, 5 a week."""
    return {
        "id": cid, "name": f"{cid}教联体",
        "campuses": [HUB, {"id": campus, "name": f"{campus}校", "bells": ["08:00"]}],
        "classes": [{"id": f"{campus}-7", "name": "七(1)班", "campus": campus, "grade": 7}],
        "teachers": [teacher],
        "courses": [{"id": f"{cid}-music", "subject": "音乐", "grade": 7, "teacher": teacher["id"],
                     "classes": [f"{campus}-7"], "per_week": 5, "local": True}],
    }


def test_a_shared_itinerant_teacher_is_booked_once_across_consortia():
    a = load(one("ka", "a", ZHAO))
    b = load(one("kb", "b", ZHAO))
    c = load(one("kc", "c", ZHAO | {"id": "qian", "name": "钱老师"}))
    assert [[x.id for x in g] for g in linked([a, b, c])] == [["ka", "kb"], ["kc"]]
    # apart, each would give 赵老师 all five Monday-Friday 08:00 periods: ten at once
    assert solve(a).placed + solve(b).placed == 10
    plans = solve_county([a, b, c], time_limit_s=5)
    assert [p.consortium for p in plans] == ["ka", "kb", "kc"]
    assert plans[0].placed + plans[1].placed == 5  # one person, five 08:00 periods
    assert plans[2].placed == 5
    assert all(p.proven_optimal for p in plans)
    slots = plans[0].lessons + plans[1].lessons
    assert len({s.day for s in slots}) == 5
    missing = sum(u.missing for p in plans[:2] for u in p.unplaced)
    assert missing == 5


def test_a_teacher_or_campus_defined_two_ways_or_a_reused_class_id_is_refused():
    a = load(one("ka", "a", ZHAO))
    with pytest.raises(ModelError, match="teachers.zhao"):
        merge([a, load(one("kb", "b", ZHAO | {"subjects": ["美术"]}))])
    data = one("kb", "b", ZHAO)
    data["campuses"][0] = HUB | {"bells": ["08:10"]}
    with pytest.raises(ModelError, match=r"campuses\.hub.*ka.*kb"):
        merge([a, load(data)])
    with pytest.raises(ModelError, match=r"classes\.a-7"):
        merge([a, load(one("kb", "a", ZHAO) | {"id": "kb"})])
    assert set(merge([a, load(one("kb", "b", ZHAO))]).campuses) == {"hub", "a", "b"}


def test_progress_reports_solutions_and_finished_groups():
    a = load(one("ka", "a", ZHAO))
    b = load(one("kb", "b", ZHAO))
    c = load(one("kc", "c", ZHAO | {"id": "qian", "name": "钱老师"}))
    seen: list[tuple[float, float]] = []
    plan = solve(c, time_limit_s=5, progress=lambda s, obj: seen.append((s, obj)))
    assert seen and seen[-1][1] >= seen[0][1]  # better solutions, in order
    finished: list[list[str]] = []
    solve_county([a, b, c], time_limit_s=5, on_plan=lambda ps: finished.append(
        [p.consortium for p in ps]))
    assert finished == [["ka", "kb"], ["kc"]]
    assert plan.placed == 5
