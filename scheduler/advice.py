"""Bell advice: when a synchronous course cannot get all its lessons because the campuses'
periods do not line up, propose the smallest shifts of a campus's bells that fix it.

A shift moves one campus's morning (上午), afternoon (下午) or whole-day (全天) bells, on every
weekday, by a multiple of `STEP` minutes up to `MAX_SHIFT`. Proposals change one campus, or
two when no single campus can help, and are ordered by fewest campuses, then fewest minutes
moved. Screening is slot-level (`slots.course_slots` on the shifted bells: which weekdays still
have a qualifying period), so hundreds of candidates take milliseconds; a proposal that would
take a lesson away from any other course is dropped. `advise(..., verify=greedy)` (or a CP-SAT
`solve` wrapper) then re-plans each kept proposal to report the lessons actually placed.
Given a plan, courses it left out although the bells allow them ("crowded": their few aligned
periods are taken) are helped too, by shifts that add aligned periods, checked by re-planning.

    blocked(c) -> {course id: lessons the bells keep out}
    advise(c, limit=5, max_campuses=2, verify=None, plan=None) -> [Advice]
    shifted(c, shifts) -> Consortium with the new bells (ValueError if they overlap)
    Advice.text(c) -> one line of Chinese for staff
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .model import Campus, Consortium, Course, Period
from .slots import course_slots
from .solve import Plan, solve

# Policy: what a school can reasonably be asked to move.
STEP = 5  # minutes
MAX_SHIFT = 20  # minutes either way
NOON = 12 * 60  # periods starting before this are the morning's
EARLIEST, LATEST = 6 * 60, 22 * 60  # shifted bells stay within the school day
GAP = 40  # a period's length: shifted periods of a day must not overlap (as in load.py)

AM, PM, DAY = "上午", "下午", "全天"


@dataclass(frozen=True)
class Shift:
    campus: str
    session: str  # AM, PM or DAY
    minutes: int  # negative: earlier

    def moves(self, p: Period) -> bool:
        return self.session == DAY or (self.session == AM) == (p.start < NOON)

    def describe(self, c: Consortium) -> str:
        campus = c.campuses[self.campus]
        way = "提前" if self.minutes < 0 else "推后"
        first = [p for p in campus.periods if self.moves(p)][:1]
        example = ""
        if first:
            before = first[0].start
            example = f" ({_hhmm(before)}→{_hhmm(before + self.minutes)} 起)"
        return f"{campus.name}{self.session}作息{way} {abs(self.minutes)} 分钟{example}"

    def bells(self, c: Consortium) -> dict[int, list[str]]:
        """The campus's new period starts per weekday, as a TOML `bells` list reads."""
        campus = shifted(c, [self]).campuses[self.campus]
        days = sorted({p.day for p in campus.periods})
        return {d: [_hhmm(p.start) for p in campus.on(d)] for d in days}


@dataclass
class Advice:
    shifts: tuple[Shift, ...]
    gains: dict[str, int]  # course id -> lessons a week that become placeable
    fixed: tuple[str, ...]  # courses that can then get every lesson they ask for
    placed: tuple[int, int] | None = None  # (before, after) lessons placed, when verified
    newly_placed: dict[str, int] = field(default_factory=dict)  # verified, per course

    @property
    def campuses(self) -> int:
        return len({s.campus for s in self.shifts})

    @property
    def minutes(self) -> int:
        return sum(abs(s.minutes) for s in self.shifts)

    def cost(self) -> tuple[int, int, int]:
        sessions = sum(2 if s.session == DAY else 1 for s in self.shifts)
        return (self.campuses, self.minutes, sessions)

    def text(self, c: Consortium) -> str:
        what = "、".join(s.describe(c) for s in self.shifts)
        gains = "; ".join(
            f"{_course_name(c, cid)} 可多排 {n} 节" + (" (排满)" if cid in self.fixed else "")
            for cid, n in sorted(self.gains.items())
        )
        line = f"建议: {what}。效果: {gains}"
        if self.placed is not None:
            line += f"。重新排课: 已排 {self.placed[0]} → {self.placed[1]} 节"
        return line


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _course_name(c: Consortium, cid: str) -> str:
    course = c.courses[cid]
    return f"{course.grade}年级{course.subject} ({cid})"


def shifted(c: Consortium, shifts: Iterable[Shift]) -> Consortium:
    """A copy of `c` with the shifts applied; ValueError when a campus's day would then hold
    overlapping periods or leave the school day."""
    campuses = dict(c.campuses)
    for s in shifts:
        campus = campuses[s.campus]
        periods = tuple(
            dataclasses.replace(p, start=p.start + s.minutes, end=p.end + s.minutes)
            if s.moves(p) else p
            for p in campus.periods
        )
        for day in {p.day for p in periods}:
            starts = sorted(p.start for p in periods if p.day == day)
            if starts[0] < EARLIEST or starts[-1] + GAP > LATEST:
                raise ValueError(f"{campus.name}: 作息超出 {_hhmm(EARLIEST)}–{_hhmm(LATEST)}")
            if any(b - a < GAP for a, b in itertools.pairwise(starts)):
                raise ValueError(f"{campus.name}: 上午与下午的课会重叠")
        campuses[s.campus] = Campus(campus.id, campus.name, periods)
    return dataclasses.replace(c, campuses=campuses)


def _reach(c: Consortium, course: Course) -> int:
    """Lessons a week the bells allow: one a day, on days with a qualifying period."""
    return min(course.per_week, len({s.day for s in course_slots(c, course)}))


def blocked(c: Consortium) -> dict[str, int]:
    """Synchronous courses whose bells keep lessons out, and how many a week."""
    out = {}
    for cid, course in c.courses.items():
        if not course.local:
            missing = course.per_week - _reach(c, course)
            if missing > 0:
                out[cid] = missing
    return out


def _campuses_of(c: Consortium, course: Course) -> set[str]:
    return {c.teachers[course.teacher].campus} | {c.classes[k].campus for k in course.classes}


def _units(c: Consortium, campus: str) -> list[Shift]:
    sessions = {AM if p.start < NOON else PM for p in c.campuses[campus].periods}
    if len(sessions) == 2:
        sessions.add(DAY)
    steps = [m for k in range(1, MAX_SHIFT // STEP + 1) for m in (-k * STEP, k * STEP)]
    return [Shift(campus, s, m) for s in (AM, PM, DAY) if s in sessions for m in steps]


def _evaluate(
    c: Consortium, shifts: tuple[Shift, ...], targets: dict[str, int], reach: dict[str, int]
) -> Advice | None:
    """The advice these shifts give, or None when they help no target or hurt any course."""
    try:
        moved = shifted(c, shifts)
    except ValueError:
        return None
    gains, fixed = {}, []
    for cid in targets:
        now = _reach(moved, c.courses[cid])
        if now < reach[cid]:
            return None  # helping one blocked course at another's cost is no advice
        if now > reach[cid]:
            gains[cid] = now - reach[cid]
            if now == c.courses[cid].per_week:
                fixed.append(cid)
    if not gains:
        return None
    if _hurts(c, moved, shifts, reach, targets):
        return None
    return Advice(shifts, gains, tuple(sorted(fixed)))


def _hurts(
    c: Consortium, moved: Consortium, shifts: tuple[Shift, ...], reach: dict[str, int],
    skip: dict[str, int],
) -> bool:
    """Would any course (but those in `skip`) lose a lesson the bells allowed before?"""
    touched = {s.campus for s in shifts}
    return any(
        cid not in skip and touched & _campuses_of(c, course)
        and _reach(moved, course) < reach[cid]
        for cid, course in c.courses.items()
    )


def advise(
    c: Consortium,
    limit: int = 5,
    max_campuses: int = 2,
    verify: Callable[[Consortium], Plan] | None = None,
    plan: Plan | None = None,
) -> list[Advice]:
    """Up to `limit` proposals, cheapest first (fewest campuses, then minutes moved); empty
    when nothing is held back by the bells or no shift within ±MAX_SHIFT helps.

    Blocked courses (`blocked`): two-campus proposals are sought only for those no single
    campus can fully fix. `plan`: its unplaced synchronous courses that the bells do allow but
    whose few aligned periods are taken ("crowded") also count; shifts that give them more
    aligned periods are re-planned with `verify` (default: CP-SAT, a few seconds), cheapest
    first and at most CROWDED_CHECKS of them, and kept if more lessons get placed. `verify`,
    e.g. `greedy` or `lambda c: solve(c, 5)`, also re-plans each blocked-course proposal.
    When no proposal fixes every blocked course, the last one combines proposals at
    different campuses (it may move more than `max_campuses`) if that fixes more."""
    targets = blocked(c)
    crowded = {} if plan is None else {
        u.item: u.missing for u in plan.unplaced
        if u.item in c.courses and not c.courses[u.item].local and u.item not in targets
    }
    reach = {cid: _reach(c, course) for cid, course in c.courses.items()}
    found = _for_blocked(c, targets, reach, max_campuses) if targets else []
    if crowded:
        found += _for_crowded(c, crowded, reach, verify or _solve_briefly)
    ranked = sorted(found, key=lambda a: (a.cost(), -sum(a.gains.values())))
    # A proposal that costs more and gains no more than a cheaper one is noise; one as cheap
    # at other campuses is a real alternative.
    kept: list[Advice] = []
    for a in ranked:
        if not any(_covers(k, a) and (k.cost() < a.cost() or _where(k) == _where(a))
                   for k in kept):
            kept.append(a)
    bundle = _bundle(c, [a for a in found if a.placed is None], targets, reach)
    if bundle is not None and not any(_covers(k, bundle) for k in kept):
        kept = kept[: limit - 1] + [bundle]  # the cheap ones first, then all at once
    kept = kept[:limit]
    if verify is not None and any(a.placed is None for a in kept):
        before = verify(c)
        for a in kept:
            if a.placed is None:
                _check(a, before, verify(shifted(c, a.shifts)))
    return kept


def _bundle(
    c: Consortium, found: list[Advice], targets: dict[str, int], reach: dict[str, int]
) -> Advice | None:
    """When no one proposal fixes every blocked course: proposals at distinct campuses taken
    together, if together they fix more than any one does. Shifts interact (moving the
    master teacher's campus changes every course's alignment), so each addition is checked
    on the combined bells; each of the best BUNDLE_STARTS proposals is tried as the seed."""
    if not found or any(set(a.fixed) == set(targets) for a in found):
        return None
    order = sorted(found, key=lambda a: (-len(a.fixed), a.cost()))
    best: Advice | None = None
    for seed in order[:BUNDLE_STARTS]:
        current = seed
        for a in order:
            if _where(a) & _where(current) or not set(a.fixed) - set(current.fixed):
                continue
            together = _evaluate(c, current.shifts + a.shifts, targets, reach)
            if together is not None and len(together.fixed) > len(current.fixed):
                current = together
        if best is None or (-len(current.fixed), current.cost()) < (-len(best.fixed),
                                                                     best.cost()):
            best = current
    if best is None or len(best.fixed) <= len(order[0].fixed):
        return None
    return best


BUNDLE_STARTS = 10
CROWDED_CHECKS = 8  # re-plans per advice request for crowded courses (CP-SAT: ~0.1 s each)


def _solve_briefly(c: Consortium) -> Plan:
    return solve(c, time_limit_s=5)


def _check(a: Advice, before: Plan, after: Plan) -> None:
    count, now = _per_course(before), _per_course(after)
    a.placed = (before.placed, after.placed)
    a.newly_placed = {k: n - count.get(k, 0) for k, n in now.items() if n > count.get(k, 0)}


def _for_blocked(
    c: Consortium, targets: dict[str, int], reach: dict[str, int], max_campuses: int
) -> list[Advice]:
    best: dict[tuple, Advice] = {}  # per (campuses, gains): the cheapest

    def keep(advice: Advice | None) -> None:
        if advice is None:
            return
        key = (_where(advice), frozenset(advice.gains.items()))
        if key not in best or advice.cost() < best[key].cost():
            best[key] = advice

    involved = sorted(set().union(*(_campuses_of(c, c.courses[t]) for t in targets)))
    for campus in involved:
        for unit in _units(c, campus):
            keep(_evaluate(c, (unit,), targets, reach))
    fixed_by_one = {cid for a in best.values() for cid in a.fixed}
    rest = {cid: n for cid, n in targets.items() if cid not in fixed_by_one}
    if rest and max_campuses >= 2:
        found_at: int | None = None
        campuses = sorted(set().union(*(_campuses_of(c, c.courses[t]) for t in rest)))
        pairs = [
            (a, b)
            for x, y in itertools.combinations(campuses, 2)
            for a in _units(c, x) for b in _units(c, y)
        ]
        pairs.sort(key=lambda ab: abs(ab[0].minutes) + abs(ab[1].minutes))
        for a, b in pairs:
            total = abs(a.minutes) + abs(b.minutes)
            if found_at is not None and total > found_at:
                break  # the cheapest level that fixes something is enough
            advice = _evaluate(c, (a, b), rest, reach)
            if advice is not None and advice.fixed:
                keep(advice)
                found_at = total
    return list(best.values())


def _for_crowded(
    c: Consortium, crowded: dict[str, int], reach: dict[str, int],
    check: Callable[[Consortium], Plan],
) -> list[Advice]:
    """Single-campus shifts that give crowded courses more aligned periods, re-planned."""
    aligned = {cid: len(course_slots(c, c.courses[cid])) for cid in crowded}
    candidates = []
    involved = sorted(set().union(*(_campuses_of(c, c.courses[t]) for t in crowded)))
    for campus in involved:
        for unit in _units(c, campus):
            try:
                moved = shifted(c, (unit,))
            except ValueError:
                continue
            more = any(len(course_slots(moved, c.courses[cid])) > n for cid, n in aligned.items())
            if more and not _hurts(c, moved, (unit,), reach, {}):
                candidates.append((unit, moved))
    candidates.sort(key=lambda um: Advice((um[0],), {}, ()).cost())
    found = []
    before = check(c) if candidates else None
    for unit, moved in candidates[:CROWDED_CHECKS]:
        assert before is not None
        after = check(moved)
        a = Advice((unit,), {}, ())
        _check(a, before, after)
        a.gains = {k: n for k, n in a.newly_placed.items() if k in crowded}
        if after.placed > before.placed and a.gains:
            per = _per_course(after)
            a.fixed = tuple(sorted(k for k in a.gains if per[k] == c.courses[k].per_week))
            found.append(a)
    return found


def _where(a: Advice) -> frozenset[str]:
    return frozenset(s.campus for s in a.shifts)


def _covers(a: Advice, b: Advice) -> bool:
    return all(a.gains.get(cid, 0) >= n for cid, n in b.gains.items())


def _per_course(plan: Plan) -> dict[str, int]:
    out: dict[str, int] = {}
    for s in plan.lessons:
        out[s.item] = out.get(s.item, 0) + 1
    return out
