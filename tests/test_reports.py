"""server/reports.py: a term's report checked figure by figure against a known set of lessons,
and the same figures in the CSV and the Excel export."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import aiohttp
import pytest
from openpyxl import load_workbook

from server.records import RecordsStore
from server.reports import HEADERS, build_report, term_bounds, to_csv, to_xlsx

C = "suixian-yandi"
CAMPUSES = {"yandi": "炎帝学校", "lieshanhu": "烈山湖学校", "lishan-central": "厉山镇中心学校"}
MIN = 60.0


def at(day: int, hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 10, day, hour, minute).timestamp()


@pytest.fixture
def store(tmp_path: Path) -> RecordsStore:
    """Four scheduled lessons hosted at 炎帝学校 for the two member campuses, one not held;
    an unscheduled lesson; a research meeting; one lesson of another term and consortium."""
    s = RecordsStore(tmp_path / "records.sqlite3")
    members = ["lieshanhu", "lishan-central"]
    ids = [
        s.schedule("g7-math", at(d, 8), at(d, 8, 40), members, consortium=C, host_campus="yandi")
        for d in (12, 13, 14, 15)
    ]
    # Lesson 1 (Oct 12): both campuses for 40 minutes, recorded; all links good but one poor.
    lesson = s.open_lesson("g7-math", at(12, 8), consortium=C)
    assert lesson == ids[0]
    teacher = s.joined(lesson, "t", "王老师", "teacher", "yandi", at(12, 8))
    a = s.joined(lesson, "c1", "烈山湖七(1)班", "classroom", "lieshanhu", at(12, 8))
    b = s.joined(lesson, "c2", "厉山七(1)班", "classroom", "lishan-central", at(12, 8))
    s.health([(teacher, "good"), (a, "good"), (b, "good"), (b, "poor")])
    s.set_recording("g7-math", "rec-1")
    s.close_lesson(lesson, at(12, 8, 40))
    # Lesson 2 (Oct 13): only 烈山湖 joins, 5 minutes late, leaves 5 minutes early.
    lesson = s.open_lesson("g7-math", at(13, 7, 55), consortium=C)
    assert lesson == ids[1]  # matched though opened 5 minutes before its start
    s.joined(lesson, "t", "王老师", "teacher", "yandi", at(13, 7, 55))
    row = s.joined(lesson, "c1", "烈山湖七(1)班", "classroom", "lieshanhu", at(13, 8, 5))
    s.health([(row, "weak")])
    s.left(row, at(13, 8, 35))
    s.close_lesson(lesson, at(13, 8, 40))
    # Lesson 3 (Oct 14): not held. Lesson 4 (Oct 15): held, 厉山 drops and rejoins.
    lesson = s.open_lesson("g7-math", at(15, 8), consortium=C)
    assert lesson == ids[3]
    s.joined(lesson, "t", "王老师", "teacher", "yandi", at(15, 8))
    row = s.joined(lesson, "c2", "厉山七(1)班", "classroom", "lishan-central", at(15, 8))
    s.left(row, at(15, 8, 10))
    s.joined(lesson, "c2", "厉山七(1)班", "classroom", "lishan-central", at(15, 8, 12))
    s.close_lesson(lesson, at(15, 8, 40))
    # Unscheduled lesson taught by 烈山湖, and a research meeting with two campuses.
    lesson = s.open_lesson("extra", at(20, 14), consortium=C, host_campus="lieshanhu")
    s.joined(lesson, "t2", "李老师", "teacher", "lieshanhu", at(20, 14))
    s.close_lesson(lesson, at(20, 14, 30))
    meeting = s.open_lesson("math-group", at(21, 15), consortium=C, kind="meeting")
    s.joined(meeting, "m1", "王老师", "member", "yandi", at(21, 15))
    s.joined(meeting, "m2", "张老师", "member", "lishan-central", at(21, 15))
    s.close_lesson(meeting, at(21, 16))
    # Outside the report: another consortium, and next spring.
    other = s.open_lesson("elsewhere", at(12, 9), consortium="other", host_campus="yandi")
    s.close_lesson(other, at(12, 10))
    s.schedule(
        "g7-math",
        dt.datetime(2027, 3, 1, 8).timestamp(),
        dt.datetime(2027, 3, 1, 9).timestamp(),
        members,
        consortium=C,
        host_campus="yandi",
    )
    return s


def test_term_report_figures(store: RecordsStore) -> None:
    rows = {r.campus: r for r in build_report(store, C, CAMPUSES, *term_bounds("2026-autumn"))}
    yandi, lsh, lsc = rows["yandi"], rows["lieshanhu"], rows["lishan-central"]
    assert (yandi.hosted_scheduled, yandi.hosted_held, yandi.recordings) == (4, 3, 1)
    assert yandi.held_rate == 0.75
    assert (yandi.received_scheduled, yandi.meetings_attended) == (0, 1)
    assert (lsh.received_scheduled, lsh.received_attended, lsh.unscheduled_held) == (4, 2, 1)
    assert (lsc.received_scheduled, lsc.received_attended, lsc.meetings_attended) == (4, 2, 1)
    assert lsh.attendance_rate == 0.5
    # Minutes online: 40 + 30 (lesson 2) + 30 (its own unscheduled lesson) for 烈山湖;
    # 40 + 10 + 28 + 60 (the meeting) for 厉山镇中心学校.
    assert lsh.attendance_minutes == 100.0
    assert lsc.attendance_minutes == 138.0
    assert yandi.attendance_minutes == 40 + 45 + 40 + 60
    assert lsh.good_link_share == 0.5 and lsc.good_link_share == 0.5
    assert yandi.good_link_share == 1.0
    assert set(rows) == set(CAMPUSES)  # the other consortium's campus never shows up
    spring = build_report(store, C, CAMPUSES, *term_bounds("2027-spring"))
    assert {r.campus: r.hosted_scheduled for r in spring}["yandi"] == 1


def test_csv_and_excel_carry_the_same_figures(store: RecordsStore) -> None:
    rows = build_report(store, C, CAMPUSES, *term_bounds("2026-autumn"))
    data = to_csv(rows)
    assert data.startswith(b"\xef\xbb\xbf")  # BOM: Excel opens the Chinese correctly
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == list(HEADERS.values())
    by_name = {line[1]: line for line in lines[1:]}
    assert by_name["烈山湖学校"][list(HEADERS).index("attendance_rate")] == "0.5"
    sheet = load_workbook(io.BytesIO(to_xlsx(rows, "炎帝学校教联体 2026-autumn"))).active
    values = list(sheet.values)
    assert values[0][0] == "炎帝学校教联体 2026-autumn"
    assert list(values[1]) == list(HEADERS.values())
    for xl, line in zip(values[2:], lines[1:], strict=True):
        assert [_same(v, text) for v, text in zip(xl, line, strict=True)] == [True] * len(line)


def _same(cell: object, text: str) -> bool:
    if isinstance(cell, int | float):
        return float(text) == cell
    return ("" if cell is None else cell) == text


def test_a_term_name_must_be_a_known_shape() -> None:
    with pytest.raises(ValueError):
        term_bounds("2026秋")
    start, end = term_bounds("2026-autumn")
    assert dt.datetime.fromtimestamp(start) == dt.datetime(2026, 9, 1)
    assert dt.datetime.fromtimestamp(end) == dt.datetime(2027, 2, 1)


async def test_report_download_is_for_staff(server, mint) -> None:
    url = f"{server.url}/api/reports/suixian-yandi"
    staff = mint("*", "observer", "教务")
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}.xlsx", params={"term": "2026-autumn", "token": staff}) as r:
            assert r.status == 200
            load_workbook(io.BytesIO(await r.read()))  # a real workbook
        async with http.get(f"{url}.csv", params={"term": "2026-autumn", "token": staff}) as r:
            assert r.status == 200 and "attachment" in r.headers["Content-Disposition"]
        async with http.get(f"{url}.csv", params={"term": "秋季", "token": staff}) as r:
            body = await r.json()
            assert r.status == 400 and body["code"] == "bad_term" and body["message"]
        teacher = mint("yandi-g7-math", "teacher", "王老师")
        async with http.get(f"{url}.csv", params={"term": "2026-autumn", "token": teacher}) as r:
            assert r.status == 403
        async with http.get(f"{url}.csv", params={"term": "2026-autumn", "token": "x"}) as r:
            assert r.status == 401
        # A consortium's staff exports its own consortium's report only.
        own = mint("*", "observer", "随县教务", consortium="suixian-yandi")
        other = mint("*", "observer", "华容教务", consortium="huarong-shiyan")
        async with http.get(f"{url}.csv", params={"term": "2026-autumn", "token": own}) as r:
            assert r.status == 200
        async with http.get(f"{url}.csv", params={"term": "2026-autumn", "token": other}) as r:
            assert r.status == 403 and "本教联体" in (await r.json())["message"]
