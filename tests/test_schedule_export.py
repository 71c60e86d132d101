"""Excel 课表 per campus, class and teacher, and the 明细 list that imports back as locks."""

import dataclasses
from pathlib import Path

from openpyxl import load_workbook

from scheduler.export import DAY_NAMES, grid, hhmm, workbook, write_csv, write_excel
from scheduler.imports import import_locks, plan_locks
from scheduler.load import load, load_file
from scheduler.solve import solve
from scheduler.store import Store
from tests.schedule_samples import consortium

ROOT = Path(__file__).resolve().parent.parent
HUARONG = ROOT / "config/consortia/huarong-changgong.toml"


def solved(path=HUARONG):
    c = load_file(path)
    return c, solve(c, time_limit_s=20)


def test_class_sheets_are_weekly_grids_with_the_class_s_own_bells(tmp_path):
    c, plan = solved()
    paths = write_excel(c, plan, tmp_path)
    assert [p.name for p in paths] == [
        "huarong-changgong-校区课表.xlsx", "huarong-changgong-班级课表.xlsx",
        "huarong-changgong-教师课表.xlsx"]
    wb = load_workbook(paths[1])
    assert len(wb.sheetnames) == len(c.classes) + 1 and wb.sheetnames[-1] == "明细"
    for k, klass in c.classes.items():
        ws = wb[klass.name]
        assert [ws.cell(2, col).value for col in range(1, 7)] == ["节次", *DAY_NAMES.values()]
        first = c.campuses[klass.campus].on(1)[0]
        assert ws.cell(3, 1).value == f"第1节 {hhmm(first.start)}–{hhmm(first.end)}"
        shown = 0
        for s in plan.lessons:
            period = dict(s.class_periods).get(k)
            if period is None:
                continue
            course = c.courses[s.item]
            cell = ws.cell(period + 2, s.day + 1).value
            marker = "〔走教〕" if course.local else "〔同步〕"
            assert f"{course.subject} {c.teachers[course.teacher].name} {marker}" in cell
            shown += 1
        filled = sum(1 for row in ws.iter_rows(min_row=3, min_col=2) for v in row if v.value)
        assert filled == shown > 0


def test_campus_and_teacher_sheets(tmp_path):
    c, plan = solved()
    campus = workbook(c, plan, "campus")["宋市中学"]
    text = "\n".join(str(v) for row in campus.iter_rows(values_only=True) for v in row if v)
    lessons_there = [(s, k) for s in plan.lessons for k, _ in s.class_periods
                     if c.classes[k].campus == "cg-songshi"]
    assert text.count("宋市中学七(1)班: ") + text.count("宋市中学八(1)班: ") == len(lessons_there)
    g = grid(c, plan, "teacher", "cg-yi-yinyue")  # 走教: rows are the teacher's clock times
    assert all("–" in r and not r.startswith("第") for r in g.rows)
    cells = [t for texts in g.cells.values() for t in texts]
    assert sum("〔走教〕" in t for t in cells) == 3 and sum("教研" in t for t in cells) == 1


def test_a_day_with_its_own_bells_shows_its_times():
    data = consortium(courses=[{"id": "c", "subject": "语文", "grade": 7, "teacher": "wang",
                                "classes": ["core-7-1"], "per_week": 5}])
    data["campuses"][0]["bells_by_day"] = {5: ["07:50", "08:40", "09:40", "10:30"]}
    data["locks"] = [{"item": "c", "day": d, "at": 1} for d in range(1, 6)]
    c = load(data)
    g = grid(c, solve(c, time_limit_s=5), "class", "core-7-1")
    assert g.rows[0] == "第1节 08:00–08:40"
    assert g.cells[(0, 1)] == ["语文 王老师 〔同步〕"]
    assert g.cells[(0, 5)] == ["语文 王老师 〔同步〕 (07:50–08:30)"]
    assert g.notes == ["注: 周五作息不同 (4 节) 第1节 07:50–08:30, 第2节 08:40–09:20, "
                       "第3节 09:40–10:20, 第4节 10:30–11:10"]


def test_export_then_import_gives_the_same_locks(tmp_path):
    c, plan = solved()
    expected = set(plan_locks(plan))
    write_csv(c, plan, tmp_path / "课表.csv")
    assert set(import_locks(c, tmp_path / "课表.csv")) == expected
    for path in write_excel(c, plan, tmp_path):
        assert set(import_locks(c, path)) == expected, path.name
    # the imported timetable, locked, is what CP-SAT keeps
    locked = dataclasses.replace(c, locks=import_locks(c, tmp_path / "课表.csv"))
    again = solve(locked, time_limit_s=20)
    assert set(plan_locks(again)) == expected and again.proven_optimal
    store = Store(tmp_path / "t.db")
    store.put_consortium(HUARONG.read_text(encoding="utf-8"))
    assert set(store.put_locks(c.id, list(expected))) == expected
    assert set(store.locks(c.id)) == expected


def test_the_grids_alone_import_back_as_the_lessons(tmp_path):
    c, plan = solved()
    lessons = {lk for lk in plan_locks(plan) if lk.item in c.courses}
    for view in ("class", "campus"):
        wb = workbook(c, plan, view)
        del wb["明细"]  # only the weekly grids, as a school would keep them
        wb.save(tmp_path / f"{view}.xlsx")
        assert set(import_locks(c, tmp_path / f"{view}.xlsx")) == lessons, view
