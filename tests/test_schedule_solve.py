"""Greedy and CP-SAT on small consortia with known answers."""

import pytest

from scheduler.load import load
from scheduler.model import Lock
from scheduler.solve import LockError, greedy, solve, upper_bound
from tests.schedule_samples import consortium

MATH = {"id": "math", "subject": "数学", "grade": 7, "teacher": "li",
        "classes": ["core-7-1", "lsh-7-1"], "per_week": 5}


def test_everything_the_bells_allow_is_placed_and_proven_optimal():
    c = load(consortium(courses=[consortium()["courses"][0], MATH]))
    plan = solve(c, time_limit_s=10)
    assert plan.proven_optimal
    assert plan.placed == 3 + 5 == upper_bound(c)
    assert plan.unplaced == []
    # no class in two lessons at once
    seen = set()
    for s in plan.lessons:
        for k, p in s.class_periods:
            assert (k, s.day, p) not in seen
            seen.add((k, s.day, p))
    assert len({s.day for s in plan.lessons if s.item == "chinese"}) == 3  # one a day


def test_a_class_whose_bells_never_align_is_unplaced_with_the_reason():
    far = {"id": "far", "subject": "语文", "grade": 7, "teacher": "wang",
           "classes": ["core-7-1", "far-7-1"], "per_week": 2}
    c = load(consortium(courses=[far]))
    for plan in (greedy(c), solve(c, time_limit_s=5)):
        assert plan.placed == 0
        (u,) = plan.unplaced
        assert u.item == "far" and u.missing == 2 and "厉山镇中心学校" in u.reason
    assert upper_bound(c) == 0


def test_an_overbooked_class_explains_itself():
    # 24 lessons a week for one class that has 20 periods: four cannot be placed
    courses = [
        {"id": f"c{i}", "subject": "语文", "grade": 7, "teacher": t, "classes": ["core-7-1"],
         "per_week": 5}
        for i, t in enumerate(["wang", "li", "wang", "li"])
    ] + [{"id": "c4", "subject": "音乐", "grade": 7, "teacher": "zhao", "classes": ["core-7-1"],
          "per_week": 4}]
    c = load(consortium(courses=courses))
    plan = solve(c, time_limit_s=10)
    assert plan.proven_optimal and plan.placed == 20
    assert sum(u.missing for u in plan.unplaced) == 4
    assert all("占用" in u.reason for u in plan.unplaced)


def test_itinerant_teacher_gets_travel_time_and_fewer_campus_days():
    # 赵老师 teaches music in person at two campuses 25 minutes apart
    data = consortium(courses=[
        {"id": "m-core", "subject": "音乐", "grade": 7, "teacher": "zhao",
         "classes": ["core-7-1"], "per_week": 2, "local": True},
        {"id": "m-lsh1", "subject": "音乐", "grade": 7, "teacher": "zhao",
         "classes": ["lsh-7-1"], "per_week": 1, "local": True},
        {"id": "m-lsh2", "subject": "音乐", "grade": 7, "teacher": "zhao",
         "classes": ["lsh-7-2"], "per_week": 1, "local": True},
    ])
    data["classes"].append({"id": "lsh-7-2", "name": "七(2)班", "campus": "lsh", "grade": 7})
    c = load(data)
    plan = solve(c, time_limit_s=10)
    assert plan.proven_optimal and plan.placed == 4
    for a in plan.lessons:
        for b in plan.lessons:
            if a is not b:
                assert not a.clashes(b, c.travel_minutes(a.campus, b.campus))
    # both 烈山湖 classes on one trip: one day there, not two
    lsh_days = {s.day for s in plan.lessons if s.campus == "lsh"}
    assert len(lsh_days) == 1
    assert plan.campus_days(c) == 3  # 2 days at the core + 1 at 烈山湖


def test_research_meeting_avoids_its_members_lessons():
    group = {"id": "yuwen", "subject": "语文", "members": ["wang", "li"], "minutes": 40,
             "hosts": ["core", "lsh"]}
    data = consortium(courses=[consortium()["courses"][0], MATH], groups=[group])
    data["teachers"][0]["unavailable"] = [[d, "10:40", "11:20"] for d in (1, 2, 3, 4)]
    c = load(data)
    plan = solve(c, time_limit_s=10)
    (meeting,) = plan.meetings
    for s in plan.lessons:
        assert not meeting.clashes(s)
    assert plan.proven_optimal


def test_a_meeting_may_follow_a_lesson_directly_it_is_online():
    # 王老师 teaches every first period (locked); the meeting fits the second, ten minutes on
    data = consortium(
        courses=[{"id": "chinese", "subject": "语文", "grade": 7, "teacher": "wang",
                  "classes": ["core-7-1"], "per_week": 5}],
        groups=[{"id": "g", "subject": "语文", "members": ["wang"], "hosts": ["core"]}],
        locks=[{"item": "chinese", "day": d, "at": 1} for d in range(1, 6)],
    )
    data["campuses"][0]["bells"] = ["08:00", "08:50"]
    c = load(data)
    for plan in (greedy(c), solve(c, time_limit_s=5)):
        assert plan.placed == 5 and plan.unplaced == []
        (meeting,) = plan.meetings
        assert meeting.start == 8 * 60 + 50


def test_locks_hold_and_replanning_moves_as_little_as_possible():
    c = load(consortium(courses=[consortium()["courses"][0], MATH]))
    first = solve(c, time_limit_s=10)
    c.locks.append(Lock("chinese", 3, 4))
    again = solve(c, time_limit_s=10, previous=first)
    assert any((s.item, s.day, s.at) == ("chinese", 3, 4) for s in again.lessons)
    assert again.placed == first.placed
    # only what the lock forced moved (chinese, and math if it sat on Wednesday's 4th period)
    assert set(again.moved) <= {"chinese", "math"}
    c.locks.append(Lock("chinese", 3, 9))  # no such period
    with pytest.raises(ValueError, match="锁定"):
        solve(c, time_limit_s=2)


LESSON = {"subject": "数学", "grade": 7, "classes": ["core-7-1"], "per_week": 1}


@pytest.mark.parametrize(
    ("courses", "locks", "words"),
    [
        # two teachers' lessons locked into one class's same period
        ([{"id": "a", "teacher": "wang"}, {"id": "b", "teacher": "li"}],
         [("a", 1, 1), ("b", 1, 1)], "同一班级的同一节"),
        # 赵老师 locked at 炎帝 period 1 and 烈山湖 period 2: 10 minutes, 25 to travel
        ([{"id": "a", "teacher": "zhao", "local": True},
          {"id": "b", "teacher": "zhao", "local": True, "classes": ["lsh-7-1"]}],
         [("a", 1, 1), ("b", 1, 2)], "赵老师"),
        # more locks than lessons a week
        ([{"id": "a", "teacher": "wang"}], [("a", 1, 1), ("a", 2, 1)], "每周 1 节"),
    ],
)
def test_locks_that_cannot_hold_together_say_which_and_why(courses, locks, words):
    data = consortium(
        courses=[LESSON | c for c in courses],
        locks=[{"item": i, "day": d, "at": a} for i, d, a in locks],
    )
    c = load(data)
    for run in (greedy, solve):
        with pytest.raises(LockError, match=words):
            run(c)


def test_greedy_places_locks_before_the_most_constrained_course():
    # "a" has one slot only (Monday 1st); the lock puts "b" there too, and "b" wins
    data = consortium(
        courses=[LESSON | {"id": "a", "teacher": "wang"},
                 LESSON | {"id": "b", "teacher": "li"}],
        locks=[{"item": "b", "day": 1, "at": 1}],
    )
    data["teachers"][0]["unavailable"] = [[d, "00:00", "23:00"] for d in (2, 3, 4, 5)]
    data["teachers"][0]["unavailable"].append([1, "08:45", "23:00"])
    c = load(data)
    for plan in (greedy(c), solve(c, time_limit_s=5)):
        assert [(s.item, s.day, s.at) for s in plan.lessons] == [("b", 1, 1)]
        (u,) = plan.unplaced
        assert u.item == "a" and "占用" in u.reason


def test_when_cp_sat_finds_nothing_in_time_the_preview_is_the_answer():
    import random

    from bench.schedule import generate

    c = load(generate(0, random.Random(1)))
    plan = solve(c, time_limit_s=1e-9)
    assert plan.status.startswith("greedy") and not plan.proven_optimal
    assert plan.placed == greedy(c).placed > 0
    full = solve(c, time_limit_s=10)
    assert full.status == "OPTIMAL" and full.proven_optimal


def test_greedy_is_a_preview_cp_sat_never_worse():
    courses = [consortium()["courses"][0], MATH,
               {"id": "m-core", "subject": "音乐", "grade": 7, "teacher": "zhao",
                "classes": ["core-7-1"], "per_week": 2, "local": True}]
    c = load(consortium(courses=courses))
    assert solve(c, time_limit_s=10).placed >= greedy(c).placed


def test_the_county_benchmark_runs_and_cp_sat_proves_its_answers():
    from bench.schedule import run

    result = run(consortia=2, seed=3, time_limit_s=5)
    for mode in ("greedy", "cpsat"):
        assert result[mode]["sync_placed"] <= result["sync_upper_bound"]
        assert result[mode]["sync_requested"] == 40
    assert result["cpsat"]["proven_optimal_consortia"] == 2
    assert result["cpsat"]["sync_placed"] == result["sync_upper_bound"]
    assert result["cpsat"]["sync_placed"] >= result["greedy"]["sync_placed"]
    assert result["cpsat"]["teacher_campus_days"] <= result["greedy"]["teacher_campus_days"]


def test_the_benchmark_pairs_share_a_teacher_and_are_solved_together():
    from bench.schedule import run

    result = run(consortia=2, seed=3, time_limit_s=5, shared=True)
    assert result["shared_teacher_pairs"] == 1
    assert result["cpsat"]["proven_optimal_consortia"] == 2
    assert result["cpsat"]["itinerant_placed"] == result["cpsat"]["itinerant_requested"]


def test_the_suixian_sample_matches_with_afternoons_for_the_late_campus():
    from pathlib import Path

    from scheduler.load import load_file

    c = load_file(Path(__file__).resolve().parent.parent / "config/consortia/suixian-yandi.toml")
    plan = solve(c, time_limit_s=10)
    assert plan.proven_optimal and plan.unplaced == []
    math = [s for s in plan.lessons if s.item == "g7-math"]
    # 第三初级中学's mornings start 10 minutes late (30 of 40 minutes): afternoons only
    assert len(math) == 3 and all(s.start >= 14 * 60 for s in math)
    assert len(plan.meetings) == 1


def test_replanning_moves_only_the_changed_lesson_even_at_the_cost_of_a_trip():
    import random

    from bench.schedule import generate
    from scheduler.slots import course_slots

    rng = random.Random(1)
    generate(0, rng)
    c = load(generate(1, rng))  # a consortium where the new slot collides with nothing
    first = solve(c, time_limit_s=10)
    moving = next(s for s in first.lessons if c.courses[s.item].local)
    to = next(s for s in course_slots(c, c.courses[moving.item]) if s.day != moving.day)
    c.locks.append(Lock(moving.item, to.day, to.at))
    again = solve(c, time_limit_s=10, previous=first)
    assert again.proven_optimal and again.moved == [moving.item]
    assert again.placed == first.placed
    # its campus-mates stayed put, so the teacher now goes there one more day
    assert again.campus_days(c) == first.campus_days(c) + 1
