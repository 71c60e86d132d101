"""Clock-time matching across campuses with their own bells, and travel."""

from scheduler.load import load
from scheduler.model import Period
from scheduler.slots import ONLINE, Slot, course_slots, why_no_slot
from tests.schedule_samples import BASE, consortium


def test_overlap_is_clock_time_on_the_same_day_only():
    assert Period(1, 1, 480, 520).overlap(Period(1, 1, 485, 525)) == 35
    assert Period(1, 1, 480, 520).overlap(Period(2, 1, 480, 520)) == 0
    assert Period(1, 1, 480, 520).overlap(Period(1, 2, 530, 570)) == 0


def test_a_five_minute_offset_qualifies_at_35_minutes_and_twenty_never_does():
    c = load(BASE)
    slots = course_slots(c, c.courses["chinese"])
    assert len(slots) == 4 * 5  # every period, every weekday
    assert all(s.overlap == 35 for s in slots)
    assert {k: p for k, p in slots[0].class_periods} == {"core-7-1": 1, "lsh-7-1": 1}
    far = load(consortium(courses=[{"id": "c", "subject": "语文", "grade": 7, "teacher": "wang",
                                     "classes": ["core-7-1", "far-7-1"]}]))
    assert course_slots(far, far.courses["c"]) == []
    assert "厉山镇中心学校" in why_no_slot(far, far.courses["c"])
    assert "20 分钟" in why_no_slot(far, far.courses["c"])


def test_a_stricter_overlap_rule_rejects_the_five_minute_offset():
    c = load(consortium(min_overlap=38))
    assert course_slots(c, c.courses["chinese"]) == []


def test_travel_time_separates_lessons_at_two_campuses():
    a = Slot("x", 1, 1, 480, 520, "core")
    b = Slot("y", 1, 2, 530, 570, "lsh")  # ten minutes later, elsewhere
    assert a.clashes(b, travel=25) and b.clashes(a, travel=25)
    assert not a.clashes(b, travel=5)
    assert not a.clashes(Slot("y", 1, 2, 530, 570, "core"), travel=25)  # same campus
    assert not a.clashes(Slot("y", 2, 1, 480, 520, "lsh"), travel=25)  # another day
    meeting = Slot("g", 1, 530, 530, 570, ONLINE)  # joined from where the lesson was
    assert not a.clashes(meeting, travel=25) and not meeting.clashes(a, travel=25)
    assert a.clashes(Slot("g", 1, 500, 500, 540, ONLINE))


def test_teacher_unavailability_removes_slots():
    data = consortium()
    data["teachers"][0]["unavailable"] = [[1, "08:00", "12:00"]]
    c = load(data)
    assert {s.day for s in course_slots(c, c.courses["chinese"])} == {2, 3, 4, 5}


def test_campuses_that_align_only_at_different_times_are_named():
    data = consortium(courses=[{"id": "c", "subject": "语文", "grade": 7, "teacher": "wang",
                                "classes": ["core-7-1", "lsh-7-1", "far-7-1"]}])
    # 厉山镇 aligns in the afternoon only, 烈山湖 in the morning only
    data["campuses"][0]["bells"] = ["08:00", "14:00"]
    data["campuses"][1]["bells"] = ["08:00", "14:20"]
    data["campuses"][2]["bells"] = ["08:20", "14:00"]
    c = load(data)
    reason = why_no_slot(c, c.courses["c"])
    assert "同时对齐" in reason and "烈山湖学校" in reason and "厉山镇中心学校" in reason
