"""Where a lesson or meeting could go, in clock time.

A synchronous lesson qualifies for a period of its master teacher's campus when every
participating class has a period at its own campus overlapping it by at least `min_overlap`
minutes (campuses keep their own bells). An itinerant (local) lesson goes to one of its class's
periods, with the teacher there in person. A meeting may start at any period start of its
host campus (online: members join from their own campuses).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Consortium, Course, Period, ResearchGroup

ONLINE = "online"  # a meeting's place: members join from wherever they are, no travel


@dataclass(frozen=True)
class Slot:
    item: str  # course or group id
    day: int
    at: int  # the master teacher's period index (course) or start minute (meeting)
    start: int  # the teacher's / meeting's clock interval
    end: int
    campus: str  # where the teacher stands (sync: home campus; local: the class's)
    class_periods: tuple[tuple[str, int], ...] = ()  # (class id, its period index)
    overlap: int = 0  # the least overlap over the classes, minutes

    def clashes(self, other: Slot, travel: int = 0) -> bool:
        """Same person in both: they overlap, or leave less than `travel` minutes between."""
        if self.day != other.day:
            return False
        elsewhere = self.campus != other.campus and ONLINE not in (self.campus, other.campus)
        gap = travel if elsewhere else 0
        return self.start < other.end + gap and other.start < self.end + gap


def course_slots(c: Consortium, course: Course) -> list[Slot]:
    teacher = c.teachers[course.teacher]
    slots = []
    if course.local:
        klass = c.classes[course.classes[0]]
        for p in c.campuses[klass.campus].periods:
            if teacher.free(p.day, p.start, p.end):
                slots.append(
                    Slot(course.id, p.day, p.index, p.start, p.end, klass.campus,
                         ((klass.id, p.index),), p.end - p.start)
                )
        return slots
    for p in c.campuses[teacher.campus].periods:
        if not teacher.free(p.day, p.start, p.end):
            continue
        chosen: list[tuple[str, int]] = []
        least = p.end - p.start
        for class_id in course.classes:
            best = _best_period(c.campuses[c.classes[class_id].campus].on(p.day), p)
            if best is None or best.overlap(p) < c.min_overlap:
                break
            chosen.append((class_id, best.index))
            least = min(least, best.overlap(p))
        else:
            slots.append(
                Slot(course.id, p.day, p.index, p.start, p.end, teacher.campus, tuple(chosen),
                     least)
            )
    return slots


def _best_period(periods: list[Period], target: Period) -> Period | None:
    return max(periods, key=lambda q: q.overlap(target), default=None)


def meeting_slots(c: Consortium, group: ResearchGroup) -> list[Slot]:
    host = group.host(1, c)  # the meeting keeps one clock time; the first host's bells set it
    members = [c.teachers[m] for m in group.members]
    slots = []
    for p in c.campuses[host].periods:
        end = p.start + group.minutes
        if all(t.free(p.day, p.start, end) for t in members):
            slots.append(Slot(group.id, p.day, p.start, p.start, end, ONLINE))
    return slots


def why_no_slot(c: Consortium, course: Course) -> str:
    """The reason a course has no qualifying period at all, in words staff can act on."""
    teacher = c.teachers[course.teacher]
    if course.local:
        return f"{teacher.name} 在该班上课的所有节次都不空闲"
    worst = None
    for class_id in course.classes:
        campus = c.campuses[c.classes[class_id].campus]
        best = max(
            (q.overlap(p) for p in c.campuses[teacher.campus].periods for q in campus.on(p.day)),
            default=0,
        )
        if best < c.min_overlap and (worst is None or best < worst[1]):
            worst = (campus.name, best)
    if worst is not None:
        return (
            f"{worst[0]} 的作息与主讲教师所在校区最多只重叠 {worst[1]} 分钟 "
            f"(至少需要 {c.min_overlap} 分钟)"
        )
    # Each campus aligns at some period, but never all at the same one.
    failing: dict[str, int] = {}
    for p in c.campuses[teacher.campus].periods:
        for class_id in course.classes:
            campus = c.campuses[c.classes[class_id].campus]
            best = _best_period(campus.on(p.day), p)
            if best is None or best.overlap(p) < c.min_overlap:
                failing[campus.name] = failing.get(campus.name, 0) + 1
                break
    if failing and not course_slots(c, course):
        names = "、".join(sorted(failing, key=lambda n: -failing[n]))
        return f"没有一节课能让所有班级同时对齐 (对不齐的校区: {names})"
    return f"{teacher.name} 在所有可对齐的节次都不空闲"
