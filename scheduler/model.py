"""The consortium as the timetable sees it: campuses with their own bells, classes, teachers,
synchronous courses, research groups and locks. Times are minutes after midnight, clock time
(Asia/Shanghai); weekdays are 1 (Monday) to 5."""

from __future__ import annotations

from dataclasses import dataclass, field

WEEKDAYS = (1, 2, 3, 4, 5)
DEFAULT_MIN_OVERLAP = 35  # of a 40-minute period


@dataclass(frozen=True)
class Period:
    """One period of a campus's bell schedule on one weekday."""

    day: int
    index: int  # 1-based, as the campus numbers it (第1节)
    start: int
    end: int

    def overlap(self, other: Period) -> int:
        if self.day != other.day:
            return 0
        return max(0, min(self.end, other.end) - max(self.start, other.start))


@dataclass(frozen=True)
class Campus:
    id: str
    name: str
    periods: tuple[Period, ...]  # every weekday's periods

    def on(self, day: int) -> list[Period]:
        return [p for p in self.periods if p.day == day]


@dataclass(frozen=True)
class SchoolClass:
    id: str
    name: str
    campus: str
    grade: int


@dataclass(frozen=True)
class Teacher:
    id: str
    name: str
    campus: str  # home campus
    subjects: tuple[str, ...] = ()
    itinerant: bool = False  # 走教: teaches in person at several campuses
    unavailable: tuple[tuple[int, int, int], ...] = ()  # (day, start, end)

    def free(self, day: int, start: int, end: int) -> bool:
        return all(d != day or end <= s or start >= e for d, s, e in self.unavailable)


@dataclass(frozen=True)
class Course:
    """Lessons of one subject, `per_week` times a week. A synchronous course is taught live by
    its master teacher from the home campus to every class in `classes`; an itinerant (local)
    course is taught in person at its one class's campus by a teacher who travels there."""

    id: str
    subject: str
    grade: int
    teacher: str
    classes: tuple[str, ...]
    per_week: int = 1
    local: bool = False  # in person (走教), not streamed


@dataclass(frozen=True)
class ResearchGroup:
    """A subject group's weekly online research meeting (四定: fixed time, place, topic, host).
    The host campus rotates through `hosts`, one week each."""

    id: str
    subject: str
    members: tuple[str, ...]  # teacher ids
    minutes: int = 40
    hosts: tuple[str, ...] = ()  # campus ids, in rotation

    def host(self, week: int, c: Consortium) -> str:
        """The campus hosting week `week` (1 = the term's first): `hosts` in turn, or else the
        members' home campuses in turn, so every campus takes its share."""
        rotation = self.hosts or tuple(dict.fromkeys(c.teachers[m].campus for m in self.members))
        return rotation[(week - 1) % len(rotation)]


@dataclass(frozen=True)
class Lock:
    """An agreed placement the solver must keep: a course's lesson on (day, period index of the
    master teacher's campus), or a meeting on (day, start minute)."""

    item: str  # course or research group id
    day: int
    at: int  # period index for a course, start minute for a meeting


@dataclass
class Consortium:
    id: str
    name: str
    campuses: dict[str, Campus]
    classes: dict[str, SchoolClass]
    teachers: dict[str, Teacher]
    courses: dict[str, Course]
    groups: dict[str, ResearchGroup] = field(default_factory=dict)
    travel: dict[tuple[str, str], int] = field(default_factory=dict)  # minutes, both ways
    locks: list[Lock] = field(default_factory=list)
    min_overlap: int = DEFAULT_MIN_OVERLAP

    def travel_minutes(self, a: str, b: str) -> int:
        if a == b:
            return 0
        return self.travel.get((a, b), self.travel.get((b, a), 30))
