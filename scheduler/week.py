"""The weekly plan as dated happenings, for whatever drives the live rooms: what is on for a
class or a teacher at a given moment, and what comes next.

    occurrences(c, plan, start, end, term_start=None) -> [Occurrence]   # in [start, end)
    on_now(c, plan, at, class_id=... | teacher_id=..., term_start=None)
        -> (current Occurrence | None, next Occurrence | None)
    room_id(c, item) -> str        # one room per course or research group, every week

Datetimes are timezone-aware (Asia/Shanghai; naive ones are taken as Shanghai time). A class
keeps its own bells, so `Occurrence.when(class_id)` is that class's period, which may start a
few minutes before or after the master teacher's (`start`, `end`). A research meeting's host
rotates week by week from `term_start` (week 1); without it, the first host.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from .model import Consortium
from .solve import Plan

TZ = ZoneInfo("Asia/Shanghai")
LESSON, MEETING = "lesson", "meeting"


def room_id(c: Consortium, item: str) -> str:
    return f"{c.id}.{item}"


@dataclass(frozen=True)
class Occurrence:
    room: str
    item: str  # course or research group id
    kind: str  # LESSON or MEETING
    title: str
    start: datetime.datetime  # the master teacher's (a meeting's) time
    end: datetime.datetime
    host_campus: str  # the master teacher's campus; a local lesson's class campus; the host
    campuses: tuple[str, ...]  # every campus expected, the host's included
    classes: tuple[str, ...] = ()
    teachers: tuple[str, ...] = ()  # the master teacher, or the meeting's members
    subject: str = ""
    grade: int | None = None
    class_times: dict[str, tuple[datetime.datetime, datetime.datetime]] = field(
        default_factory=dict, compare=False, hash=False
    )

    def when(self, class_id: str | None = None) -> tuple[datetime.datetime, datetime.datetime]:
        """The class's own period (its campus's bells), else the teacher's time."""
        if class_id is not None and class_id in self.class_times:
            return self.class_times[class_id]
        return self.start, self.end


def _aware(t: datetime.datetime) -> datetime.datetime:
    return t.replace(tzinfo=TZ) if t.tzinfo is None else t.astimezone(TZ)


def _at(day: datetime.date, minutes: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60), TZ)


def _week(day: datetime.date, term_start: datetime.date | None) -> int:
    if term_start is None:
        return 1
    monday = term_start - datetime.timedelta(days=term_start.weekday())
    return max(1, (day - monday).days // 7 + 1)


def _on_day(c: Consortium, plan: Plan, day: datetime.date,
            term_start: datetime.date | None) -> list[Occurrence]:
    weekday = day.isoweekday()
    out = []
    for s in plan.lessons:
        if s.day != weekday:
            continue
        course = c.courses[s.item]
        teacher = c.teachers[course.teacher]
        times = {}
        for k, p in s.class_periods:
            period = next(q for q in c.campuses[c.classes[k].campus].on(weekday) if q.index == p)
            times[k] = (_at(day, period.start), _at(day, period.end))
        campuses = tuple(dict.fromkeys([s.campus, *(c.classes[k].campus for k, _ in
                                                     s.class_periods)]))
        kind = "走教" if course.local else "同步课"
        out.append(Occurrence(
            room_id(c, s.item), s.item, LESSON,
            f"{course.grade}年级{course.subject} {kind} ({teacher.name})",
            _at(day, s.start), _at(day, s.end), s.campus, campuses,
            tuple(k for k, _ in s.class_periods), (course.teacher,), course.subject,
            course.grade, times,
        ))
    for s in plan.meetings:
        if s.day != weekday:
            continue
        group = c.groups[s.item]
        host = group.host(_week(day, term_start), c)
        campuses = tuple(dict.fromkeys([host, *(c.teachers[m].campus for m in group.members)]))
        out.append(Occurrence(
            room_id(c, s.item), s.item, MEETING,
            f"{group.subject}教研 (主持: {c.campuses[host].name})",
            _at(day, s.start), _at(day, s.end), host, campuses, (), group.members,
            group.subject,
        ))
    return out


def occurrences(
    c: Consortium,
    plan: Plan,
    start: datetime.datetime,
    end: datetime.datetime,
    term_start: datetime.date | None = None,
) -> list[Occurrence]:
    """Every lesson and meeting starting in [start, end), in time order."""
    start, end = _aware(start), _aware(end)
    out = []
    day = start.date()
    while day <= end.date():
        out += [o for o in _on_day(c, plan, day, term_start) if start <= o.start < end]
        day += datetime.timedelta(days=1)
    return sorted(out, key=lambda o: (o.start, o.room))


def on_now(
    c: Consortium,
    plan: Plan,
    at: datetime.datetime,
    *,
    class_id: str | None = None,
    teacher_id: str | None = None,
    term_start: datetime.date | None = None,
    horizon_days: int = 14,
) -> tuple[Occurrence | None, Occurrence | None]:
    """The lesson or meeting of this class (by its own bells) or teacher going on at `at`,
    and the next one to start after `at` within `horizon_days`."""
    if (class_id is None) == (teacher_id is None):
        raise ValueError("give exactly one of class_id, teacher_id")
    at = _aware(at)
    begin = datetime.datetime.combine(at.date(), datetime.time(), TZ)
    found = occurrences(c, plan, begin, begin + datetime.timedelta(days=horizon_days + 1),
                        term_start)
    mine = [o for o in found
            if (class_id in o.classes if class_id is not None else teacher_id in o.teachers)]
    current = next((o for o in mine if o.when(class_id)[0] <= at < o.when(class_id)[1]), None)
    upcoming = sorted((o for o in mine if o.when(class_id)[0] > at),
                      key=lambda o: o.when(class_id)[0])
    return current, (upcoming[0] if upcoming else None)
