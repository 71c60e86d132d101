"""A plan as iCalendar, per teacher, class or campus: each lesson a weekly recurring event over
the term (RRULE FREQ=WEEKLY), in Asia/Shanghai with its VTIMEZONE, so phones and Outlook show
the week without an account anywhere.

    calendar(c, plan, view, key, term_start, weeks=TERM_WEEKS) -> icalendar.Calendar
    write_ics(c, plan, out_dir, term_start, weeks=TERM_WEEKS) -> [Path]
        <id>-campus-<campus>.ics, <id>-class-<class>.ics, <id>-teacher-<teacher>.ics

A research meeting whose host rotates among k campuses becomes k events, each every k weeks
from its own first week, so each week's event names that week's host (四定: fixed place).
Times are the reader's own (see export.entries). UIDs are stable across exports, so a
re-imported calendar updates its events instead of duplicating them.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar

from .export import MEETING, VIEWS, Entry, entries, keys, title
from .model import Consortium
from .solve import Plan

TZ = ZoneInfo("Asia/Shanghai")
TERM_WEEKS = 20  # a Chinese school term
PRODID = "-//Tongke 同课//timetable//ZH"


def _at(day: datetime.date, minutes: int) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60), TZ)


def _uid(c: Consortium, view: str, key: str, e: Entry, week: int) -> str:
    raw = f"{c.id}|{view}|{key}|{e.item}|{e.day}|{e.start}|{week}"
    return hashlib.sha1(raw.encode()).hexdigest()[:24] + "@tongke"


def calendar(
    c: Consortium,
    plan: Plan,
    view: str,
    key: str,
    term_start: datetime.date,
    weeks: int = TERM_WEEKS,
) -> icalendar.Calendar:
    """`term_start`: any day of the term's first week (its Monday is week 1's)."""
    monday = term_start - datetime.timedelta(days=term_start.weekday())
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", f"{c.name} {title(c, view, key)} {VIEWS[view]}")
    cal.add("x-wr-timezone", str(TZ))
    stamp = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    for e in entries(c, plan, view, key):
        rotation: list[str | None] = [None]
        if e.kind == MEETING:
            group = c.groups[e.item]
            period = len(group.hosts or {c.teachers[m].campus for m in group.members})
            rotation = [group.host(w, c) for w in range(1, period + 1)]
        every = len(rotation)
        for first, host in enumerate(rotation):  # week first+1, then every `every` weeks
            count = len(range(first, weeks, every))
            if count == 0:
                continue
            day = monday + datetime.timedelta(weeks=first, days=e.day - 1)
            event = icalendar.Event()
            event.add("uid", _uid(c, view, key, e, first))
            event.add("dtstamp", stamp)
            event.add("summary", e.text)
            event.add("dtstart", _at(day, e.start))
            event.add("dtend", _at(day, e.end))
            rule: dict[str, object] = {"freq": "weekly", "count": count}
            if every > 1:
                rule["interval"] = every
            event.add("rrule", rule)
            where = e.where if host is None else f"线上 (主持: {c.campuses[host].name})"
            event.add("location", where)
            event.add("description", e.detail)
            event.add("categories", [e.kind])
            cal.add_component(event)
    cal.add_missing_timezones()
    return cal


def write_ics(
    c: Consortium,
    plan: Plan,
    out_dir: Path,
    term_start: datetime.date,
    weeks: int = TERM_WEEKS,
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for view in VIEWS:
        for key in keys(c, view):
            path = out_dir / f"{c.id}-{view}-{key}.ics"
            path.write_bytes(calendar(c, plan, view, key, term_start, weeks).to_ical())
            paths.append(path)
    return paths
