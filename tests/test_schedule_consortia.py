"""Every consortium shipped in config/consortia loads and solves: every lesson the bells allow,
every research meeting, nobody double-booked."""

from pathlib import Path

import pytest

from scheduler.county import linked, solve_county
from scheduler.load import load_file
from scheduler.solve import solve, upper_bound

FILES = sorted((Path(__file__).resolve().parent.parent / "config/consortia").glob("*.toml"))


def test_the_county_samples_are_there():
    names = {f.stem for f in FILES}
    assert {"suixian-yandi", "huarong-changgong", "huarong-shiyan"} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_each_consortium_loads_and_solves(path):
    c = load_file(path)
    plan = solve(c, time_limit_s=20)
    assert plan.proven_optimal
    asked = sum(k.per_week for k in c.courses.values())
    assert plan.placed == upper_bound(c) == asked and plan.unplaced == []
    assert len(plan.meetings) == len(c.groups)
    taken = set()
    for s in plan.lessons:
        for k, p in s.class_periods:
            assert (k, s.day, p) not in taken
            taken.add((k, s.day, p))
    by_teacher: dict[str, list] = {}
    for s in plan.lessons:
        by_teacher.setdefault(c.courses[s.item].teacher, []).append(s)
    for s in plan.meetings:
        for t in c.groups[s.item].members:
            by_teacher.setdefault(t, []).append(s)
    for slots in by_teacher.values():
        for i, a in enumerate(slots):
            for b in slots[i + 1:]:
                assert not a.clashes(b, c.travel_minutes(a.campus, b.campus))


def test_huarong_uses_the_seed_s_schools_and_has_itinerant_teachers():
    c = load_file(next(f for f in FILES if f.stem == "huarong-changgong"))
    assert {x.name for x in c.campuses.values()} == {
        "长工实验学校", "梅田中学", "宋市中学", "操军中学", "南山中学"}
    assert sum(t.itinerant for t in c.teachers.values()) == 3
    assert any(k.local for k in c.courses.values())
    s = load_file(next(f for f in FILES if f.stem == "huarong-shiyan"))
    assert {x.name for x in s.campuses.values()} == {"实验小学", "治河渡中心小学", "梅田湖西来小学"}


def test_the_whole_county_solves_each_consortium_apart():
    county = [load_file(f) for f in FILES]
    assert len(linked(county)) == len(county)  # no shared ids between the samples
    plans = solve_county(county, time_limit_s=20)
    assert [p.consortium for p in plans] == [c.id for c in county]
    assert all(p.unplaced == [] and p.proven_optimal for p in plans)
