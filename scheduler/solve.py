"""Matching: an instant greedy preview, then CP-SAT per consortium.

Objective, in this order of weight: lessons placed, meetings placed, (when re-planning)
keeping what was placed before, fewer campus-days for itinerant teachers (less travel), more
overlap minutes. Locks are hard. The answer always carries the timetable, what could not be
placed and why, and whether CP-SAT proved it optimal.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from .model import Consortium
from .slots import Slot, course_slots, meeting_slots, why_no_slot

# Each weight outweighs any total of the ones below it (for up to thousands of items).
W_LESSON = 1_000_000
W_MEETING = 500_000
# Re-planning moves as few items as possible: keeping one beats saving the campus-day (and the
# few overlap minutes) that moving it could gain.
W_KEEP = 100  # per lesson or meeting kept where it was
W_CAMPUS_DAY = 50  # overlap minutes add at most 5 per lesson (35 vs 40)
# CP-SAT's portfolio at 2 workers lacked the subsolver that proves the fewest campus-days: on
# the bench county it hit 5 s limits unproven; 3 proves each consortium in ~0.2 s (2 cores).
WORKERS = 3


@dataclass
class Unplaced:
    item: str
    missing: int  # lessons (or the meeting) not placed
    reason: str


@dataclass
class Plan:
    consortium: str
    lessons: list[Slot] = field(default_factory=list)
    meetings: list[Slot] = field(default_factory=list)
    unplaced: list[Unplaced] = field(default_factory=list)
    proven_optimal: bool = False
    seconds: float = 0.0
    moved: list[str] = field(default_factory=list)  # re-planning: items whose slots changed
    status: str = ""  # how the answer was found: "greedy", or CP-SAT's OPTIMAL / FEASIBLE

    @property
    def placed(self) -> int:
        return len(self.lessons)

    @property
    def overlap_minutes(self) -> int:
        return sum(s.overlap for s in self.lessons)

    def campus_days(self, c: Consortium) -> int:
        """(teacher, day, campus) triples of itinerant teachers: fewer means less travel."""
        return len({
            (c.courses[s.item].teacher, s.day, s.campus)
            for s in self.lessons
            if c.teachers[c.courses[s.item].teacher].itinerant
        })


class _Candidates:
    def __init__(self, c: Consortium) -> None:
        self.c = c
        self.lessons = {cid: course_slots(c, course) for cid, course in c.courses.items()}
        self.meetings = {gid: meeting_slots(c, g) for gid, g in c.groups.items()}

    def person_slots(self) -> dict[str, list[Slot]]:
        """Every candidate slot each teacher would stand in."""
        by_teacher: dict[str, list[Slot]] = defaultdict(list)
        for cid, slots in self.lessons.items():
            by_teacher[self.c.courses[cid].teacher] += slots
        for gid, slots in self.meetings.items():
            for member in self.c.groups[gid].members:
                by_teacher[member] += slots
        return by_teacher

    def upper_bound(self) -> int:
        """Lessons the bells allow at all: per course, its distinct qualifying days."""
        return sum(
            min(self.c.courses[cid].per_week, len({s.day for s in slots}))
            for cid, slots in self.lessons.items()
        )


def _clash(c: Consortium, a: Slot, b: Slot) -> bool:
    return a.clashes(b, c.travel_minutes(a.campus, b.campus))


class LockError(ValueError):
    """Locks that cannot all hold; the message names each lock and what it collides with."""


def _people(c: Consortium, slot: Slot) -> tuple[str, ...]:
    if slot.item in c.groups:
        return c.groups[slot.item].members
    return (c.courses[slot.item].teacher,)


def _locked_slots(c: Consortium, cand: _Candidates) -> list[Slot]:
    """The slot of every lock, after checking the locks can hold together (else LockError):
    solving against impossible locks would only say "nothing fits", not why."""
    problems: list[str] = []
    slots: list[Slot] = []
    for lk in c.locks:
        options = cand.meetings[lk.item] if lk.item in c.groups else cand.lessons[lk.item]
        found = [s for s in options if (s.day, s.at) == (lk.day, lk.at)]
        if not found:
            problems.append(
                f"锁定的 {lk.item} 在星期{lk.day} 第{lk.at}节/时刻不可行 (无法对齐或教师不空闲)"
            )
        slots += found[:1]
    for cid, course in c.courses.items():
        days = [s.day for s in slots if s.item == cid]
        if len(days) > course.per_week or len(set(days)) < len(days):
            problems.append(f"{cid} 的锁定超过每周 {course.per_week} 节或同一天锁定两节")
    for i, a in enumerate(slots):
        for b in slots[i + 1:]:
            if a.item == b.item:
                continue
            shared = {(k, p) for k, p in a.class_periods} & {(k, p) for k, p in b.class_periods}
            if a.day == b.day and shared:
                problems.append(f"锁定的 {a.item} 与 {b.item} 在星期{a.day} 占用同一班级的同一节")
            who = set(_people(c, a)) & set(_people(c, b))
            if who and _clash(c, a, b):
                names = "、".join(sorted(c.teachers[t].name for t in who))
                problems.append(
                    f"锁定的 {a.item} 与 {b.item} 在星期{a.day} 都需要 {names} "
                    "(时间重叠或来不及赶路)"
                )
    if problems:
        raise LockError("; ".join(problems))
    return slots


def check_locks(c: Consortium) -> list[Slot]:
    """The slot of each of `c.locks`; LockError naming the locks that cannot hold together."""
    return _locked_slots(c, _Candidates(c))


def _reasons(c: Consortium, cand: _Candidates, plan: Plan) -> None:
    placed: dict[str, int] = defaultdict(int)
    for s in plan.lessons:
        placed[s.item] += 1
    for cid, course in c.courses.items():
        missing = course.per_week - placed[cid]
        if missing <= 0:
            continue
        if not cand.lessons[cid]:
            reason = why_no_slot(c, course)
        elif len({s.day for s in cand.lessons[cid]}) < course.per_week:
            days = len({s.day for s in cand.lessons[cid]})
            reason = f"只有 {days} 天有对齐的节次, 每周需要 {course.per_week} 节"
        else:
            reason = "可对齐的节次都被同一教师或班级的其他课程占用"
        plan.unplaced.append(Unplaced(cid, missing, reason))
    met = {s.item for s in plan.meetings}
    for gid in c.groups:
        if gid not in met:
            reason = (
                "成员在所有时间都有课或不空闲" if cand.meetings[gid] else "成员没有共同的空闲时间"
            )
            plan.unplaced.append(Unplaced(gid, 1, reason))


def greedy(c: Consortium) -> Plan:
    """Most constrained course first, its best free slot each time: an instant preview."""
    t0 = time.monotonic()
    cand = _Candidates(c)
    plan = Plan(c.id)
    taken_class: set[tuple[str, int, int]] = set()
    by_teacher: dict[str, list[Slot]] = defaultdict(list)
    def free(slot: Slot, people: list[str]) -> bool:
        if any((k, slot.day, p) in taken_class for k, p in slot.class_periods):
            return False
        return not any(_clash(c, slot, other) for who in people for other in by_teacher[who])

    def take(slot: Slot, people: list[str]) -> None:
        for k, p in slot.class_periods:
            taken_class.add((k, slot.day, p))
        for who in people:
            by_teacher[who].append(slot)

    days_of: dict[str, set[int]] = defaultdict(set)
    for slot in _locked_slots(c, cand):  # locks first: they hold whatever comes after
        take(slot, list(_people(c, slot)))
        days_of[slot.item].add(slot.day)
        (plan.meetings if slot.item in c.groups else plan.lessons).append(slot)
    order = sorted(c.courses, key=lambda cid: (len(cand.lessons[cid]), cid))
    for cid in order:
        course = c.courses[cid]
        days = days_of[cid]
        slots = sorted(cand.lessons[cid], key=lambda s: -s.overlap)
        for slot in slots:
            if len(days) == course.per_week:
                break
            if slot.day in days or not free(slot, [course.teacher]):
                continue
            take(slot, [course.teacher])
            days.add(slot.day)
            plan.lessons.append(slot)
    for gid, group in c.groups.items():
        if days_of[gid]:
            continue  # locked
        for slot in cand.meetings[gid]:
            if free(slot, list(group.members)):
                take(slot, list(group.members))
                plan.meetings.append(slot)
                break
    _reasons(c, cand, plan)
    plan.seconds = time.monotonic() - t0
    plan.status = "greedy"
    return plan


def solve(
    c: Consortium,
    time_limit_s: float = 10.0,
    previous: Plan | None = None,
    progress: Callable[[float, float], None] | None = None,
    workers: int = WORKERS,
) -> Plan:
    """CP-SAT over every candidate slot. `previous`: re-plan, moving as little as possible.
    `progress(seconds, objective)` is called at each better solution. The greedy preview is
    the solver's starting hint, and the answer if CP-SAT finds nothing within the time limit."""
    t0 = time.monotonic()
    preview = greedy(c)  # raises LockError first if the locks cannot hold
    cand = _Candidates(c)
    m = cp_model.CpModel()
    x: dict[Slot, cp_model.IntVar] = {}
    for slots in (*cand.lessons.values(), *cand.meetings.values()):
        for s in slots:
            x[s] = m.new_bool_var(f"{s.item}@{s.day}.{s.at}")

    for cid, course in c.courses.items():
        slots = cand.lessons[cid]
        m.add(sum(x[s] for s in slots) <= course.per_week)
        for day in {s.day for s in slots}:  # at most one lesson of a course a day
            m.add_at_most_one(x[s] for s in slots if s.day == day)
    for gid in c.groups:
        m.add_at_most_one(x[s] for s in cand.meetings[gid])

    by_class: dict[tuple[str, int, int], list[Slot]] = defaultdict(list)
    for slots in cand.lessons.values():
        for s in slots:
            for k, p in s.class_periods:
                by_class[(k, s.day, p)].append(s)
    for slots in by_class.values():
        if len(slots) > 1:
            m.add_at_most_one(x[s] for s in slots)

    for slots in cand.person_slots().values():  # nobody in two places, travel included
        by_day: dict[int, list[Slot]] = defaultdict(list)
        for s in slots:
            by_day[s.day].append(s)
        for day_slots in by_day.values():
            for i, a in enumerate(day_slots):
                for b in day_slots[i + 1:]:
                    if a.item != b.item and _clash(c, a, b):
                        m.add_bool_or([x[a].Not(), x[b].Not()])

    for s in _locked_slots(c, cand):
        m.add(x[s] == 1)

    campus_day: dict[tuple[str, int, str], cp_model.IntVar] = {}
    for cid, slots in cand.lessons.items():
        teacher = c.courses[cid].teacher
        if not c.teachers[teacher].itinerant:
            continue
        for s in slots:
            key = (teacher, s.day, s.campus)
            if key not in campus_day:
                campus_day[key] = m.new_bool_var(f"cd:{key}")
            m.add_implication(x[s], campus_day[key])
        # Redundant, but it lets CP-SAT prove the fewest campus-days: a course placed on n
        # days (one lesson a day) needs n of its teacher's days at each campus it is taught at.
        for campus in {s.campus for s in slots}:
            days = [campus_day[(teacher, d, campus)] for d in {s.day for s in slots
                                                               if s.campus == campus}]
            m.add(sum(days) >= sum(x[s] for s in slots if s.campus == campus))

    before = set()
    if previous is not None:
        before = {(s.item, s.day, s.at) for s in previous.lessons + previous.meetings}
    objective = []
    for s, var in x.items():
        weight = W_MEETING if s.item in c.groups else W_LESSON + s.overlap
        if (s.item, s.day, s.at) in before:
            weight += W_KEEP
        objective.append(weight * var)
    objective += [-W_CAMPUS_DAY * v for v in campus_day.values()]
    m.maximize(sum(objective))
    hinted = set(preview.lessons + preview.meetings)
    for s, var in x.items():
        m.add_hint(var, s in hinted)

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = time_limit_s
    solver.parameters.num_workers = workers

    class _Progress(cp_model.CpSolverSolutionCallback):
        def on_solution_callback(self) -> None:
            if progress is not None:
                progress(time.monotonic() - t0, self.objective_value)

    status = solver.solve(m, _Progress())
    plan = Plan(c.id, proven_optimal=status == cp_model.OPTIMAL)
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        plan.status = solver.status_name(status)
        for s, var in x.items():
            if solver.value(var):
                (plan.meetings if s.item in c.groups else plan.lessons).append(s)
    else:  # nothing found in time (the locks were checked above): keep the preview
        plan.status = f"greedy ({solver.status_name(status)})"
        plan.lessons, plan.meetings = list(preview.lessons), list(preview.meetings)
    if previous is not None:
        now = {(s.item, s.day, s.at) for s in plan.lessons + plan.meetings}
        plan.moved = sorted({item for item, _, _ in before ^ now})
    _reasons(c, cand, plan)
    plan.seconds = time.monotonic() - t0
    return plan


def upper_bound(c: Consortium) -> int:
    return _Candidates(c).upper_bound()
