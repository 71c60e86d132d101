"""iCalendar per teacher, class and campus: weekly recurrence in Asia/Shanghai with its
VTIMEZONE; a rotating research meeting names each week's host."""

import datetime
from pathlib import Path

import icalendar

from scheduler.export import entries
from scheduler.ical import calendar, write_ics
from scheduler.load import load_file
from scheduler.solve import solve

HUARONG = Path(__file__).resolve().parent.parent / "config/consortia/huarong-changgong.toml"
TERM = datetime.date(2027, 3, 3)  # a Wednesday: the term's first week starts Monday 1 March


def parsed(cal: icalendar.Calendar) -> icalendar.Calendar:
    """What a calendar application reads."""
    return icalendar.Calendar.from_ical(cal.to_ical())


def test_every_reader_gets_a_calendar_that_parses(tmp_path):
    c = load_file(HUARONG)
    plan = solve(c, time_limit_s=20)
    paths = write_ics(c, plan, tmp_path, TERM, weeks=18)
    assert len(paths) == len(c.campuses) + len(c.classes) + len(c.teachers)
    for path in paths:
        cal = icalendar.Calendar.from_ical(path.read_bytes())
        (tz,) = cal.walk("VTIMEZONE")
        assert str(tz["TZID"]) == "Asia/Shanghai"
        for event in cal.walk("VEVENT"):
            start = event.decoded("dtstart")
            assert str(event["DTSTART"].params["TZID"]) == "Asia/Shanghai"
            assert start.utcoffset() == datetime.timedelta(hours=8)
            assert event["RRULE"]["FREQ"] == ["WEEKLY"]
            assert datetime.date(2027, 3, 1) <= start.date()


def test_a_class_s_lessons_recur_weekly_at_its_own_times():
    c = load_file(HUARONG)
    plan = solve(c, time_limit_s=20)
    cal = parsed(calendar(c, plan, "class", "cg-nanshan-7-1", TERM, weeks=18))
    events = cal.walk("VEVENT")
    expected = entries(c, plan, "class", "cg-nanshan-7-1")
    assert len(events) == len(expected) > 0
    for event, e in zip(sorted(events, key=lambda v: v.decoded("dtstart")), expected,
                        strict=True):
        start, end = event.decoded("dtstart"), event.decoded("dtend")
        assert start.isoweekday() == e.day and start.date() < datetime.date(2027, 3, 8)
        assert (start.hour * 60 + start.minute, end.hour * 60 + end.minute) == (e.start, e.end)
        assert event["RRULE"]["COUNT"] == [18] and str(event["SUMMARY"]) == e.text
        assert str(event["LOCATION"]) == "南山中学"


def test_a_rotating_meeting_names_each_week_s_host():
    c = load_file(HUARONG)
    plan = solve(c, time_limit_s=20)
    cal = parsed(calendar(c, plan, "teacher", "cg-li-sx", TERM, weeks=20))
    meetings = [e for e in cal.walk("VEVENT") if "教研" in str(e["SUMMARY"])]
    assert len(meetings) == 3  # 长工实验学校, 宋市中学, 南山中学 in turn
    firsts = sorted(e.decoded("dtstart") for e in meetings)
    assert [(b - a).days for a, b in zip(firsts, firsts[1:], strict=False)] == [7, 7]
    hosts = [str(e["LOCATION"]) for e in sorted(meetings, key=lambda e: e.decoded("dtstart"))]
    assert hosts == ["线上 (主持: 长工实验学校)", "线上 (主持: 宋市中学)", "线上 (主持: 南山中学)"]
    assert all(e["RRULE"]["INTERVAL"] == [3] for e in meetings)
    assert sum(e["RRULE"]["COUNT"][0] for e in meetings) == 20  # one meeting every week
    uids = {str(e["UID"]) for e in cal.walk("VEVENT")}
    again = calendar(c, plan, "teacher", "cg-li-sx", TERM, weeks=20)
    assert uids == {str(e["UID"]) for e in again.walk("VEVENT")}  # stable across exports
