"""An existing timetable in, from CSV or Excel, as locks: the lessons a school has fixed.

One row per lesson (a class's 课表 line) or research meeting, with a header row naming columns
(Chinese or English, any order, others ignored; Excel: the 明细 sheet if there is one, else
every sheet, header within the first 5 rows):

    课程编号 / course   course or research group id; or else 科目 + 班级 find the course
    科目 / subject      班级 / class (id or name)
    星期 / day          1-5, 周一..周五, 星期一..星期五
    节次 / period       the class's own period (第3节 or 3); without 班级, the master teacher's
    开始 / start        HH:MM: a meeting's start, or a lesson's when 节次 is not given

`export.detail_rows` writes exactly this, so export → import gives the plan's placements back
as locks. Every bad row is reported, each naming its row (第 N 行, as the file numbers it):

Excel sheets without such a header may be weekly grids instead, as schools keep them and as
`export.workbook` draws them (周一..周五 across, 第N节 down, the class named by the sheet or
its title; see `read_rows`): each cell line becomes a row of the class, subject, day, period.

    read_rows(path, classes=()) -> [(row number, {column: text})]
    locks_from_rows(c, rows) -> [Lock]        # TimetableError listing every bad row
    import_locks(c, path) -> [Lock]
    plan_locks(plan) -> [Lock]                # a plan's placements as locks
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import io
import re
from collections.abc import Iterable
from pathlib import Path

from openpyxl import load_workbook

from .load import ModelError, clock
from .model import Consortium, Lock
from .slots import Slot, course_slots, meeting_slots
from .solve import LockError, Plan, check_locks

COLUMNS = {
    "课程编号": "course", "课程": "course", "course": "course",
    "科目": "subject", "学科": "subject", "subject": "subject",
    "班级": "class", "class": "class",
    "星期": "day", "day": "day",
    "节次": "period", "节": "period", "period": "period",
    "开始": "start", "开始时间": "start", "start": "start",
}
_DAYS = {"一": 1, "二": 2, "三": 3, "四": 4, "五": 5}
DETAIL_SHEET = "明细"


class TimetableError(ValueError):
    """Every bad row: `errors` holds (row number or None for the file, message)."""

    def __init__(self, errors: list[tuple[int | None, str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"第 {r} 行: {m}" if r else m for r, m in errors))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.time | datetime.datetime):
        return f"{value.hour:02d}:{value.minute:02d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _table(raw: list[tuple[int, list[object]]], name: str) -> list[tuple[int, dict[str, str]]]:
    i = _header(raw)
    if i is None:
        raise TimetableError([(None, f"{name}: 前 5 行中没有找到表头 (至少需要 星期 一列)")])
    names = [COLUMNS.get(_text(v).lower(), COLUMNS.get(_text(v))) for v in raw[i][1]]
    rows = []
    for number, values in raw[i + 1:]:
        row = {n: _text(v) for n, v in zip(names, values, strict=False) if n}
        if any(row.values()):
            rows.append((number, row))
    return rows


def read_rows(path: Path, classes: Iterable[str] = ()) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file, or of an Excel workbook: its 明细 sheet if any, else each sheet
    that has a header row, or is a weekly grid (周一..周五 across, 第N节 down, the class named
    by the sheet or its title: one of `classes`, ids or names; a campus sheet's lines begin
    with the class, "七(1)班: 数学 …"). A grid cell's subject is its line's first word; grid
    lines of subjects with no consortium course are the school's own lessons and skipped."""
    if path.suffix.lower() == ".csv":
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:  # saved by Excel on a Chinese Windows
            text = data.decode("gb18030")
        raw = [(n + 1, list(r)) for n, r in enumerate(csv.reader(io.StringIO(text)))]
        return _table(raw, path.name)
    if path.suffix.lower() not in (".xlsx", ".xlsm"):
        raise TimetableError([(None, f"{path.name}: 只能导入 .csv 或 .xlsx 文件")])
    wb = load_workbook(path, read_only=True, data_only=True)
    try:
        sheets = [wb[DETAIL_SHEET]] if DETAIL_SHEET in wb.sheetnames else wb.worksheets
        tables = [
            (ws.title, [(n + 1, list(r)) for n, r in enumerate(ws.iter_rows(values_only=True))])
            for ws in sheets
        ]
    finally:
        wb.close()
    rows: list[tuple[int, dict[str, str]]] = []
    for name, raw in tables:
        try:
            rows += [(n, r | ({"sheet": name} if len(tables) > 1 else {}))
                     for n, r in _table(raw, name)]
        except TimetableError:
            rows += _grid(raw, name, list(classes))
    if not rows and not any(_header(raw) is not None for _, raw in tables):
        raise TimetableError(
            [(None, f"{path.name}: 没有找到表头 (星期 一列) 或 周一..周五 的课表")]
        )
    return rows


def _header(raw: list[tuple[int, list[object]]]) -> int | None:
    for i, (_, cells) in enumerate(raw[:5]):
        if "day" in [COLUMNS.get(_text(v).lower(), COLUMNS.get(_text(v))) for v in cells]:
            return i
    return None


_GRID_DAY = re.compile(r"(?:周|星期|礼拜)([一二三四五])")
_GRID_PERIOD = re.compile(r"^\s*第?\s*(\d+)\s*节?(?:\s|$)")


def _grid_header(raw: list[tuple[int, list[object]]]) -> tuple[int, dict[int, str]] | None:
    """The row of 周一..周五 among the first six, and each day's column."""
    for i, (_, cells) in enumerate(raw[:6]):
        days = {}
        for col, v in enumerate(cells):
            m = _GRID_DAY.fullmatch(_text(v))
            if m:
                days[col] = m.group(0)
        if len(days) >= 3:
            return i, days
    return None


def _grid(
    raw: list[tuple[int, list[object]]], sheet: str, classes: list[str]
) -> list[tuple[int, dict[str, str]]]:
    found = _grid_header(raw)
    if found is None:
        return []
    i, days = found
    above = " ".join([sheet] + [_text(v) for _, cells in raw[:i] for v in cells])
    named = sorted((k for k in classes if k and k in above), key=len, reverse=True)
    rows = []
    for number, cells in raw[i + 1:]:
        label = _GRID_PERIOD.match(_text(cells[0]) if cells else "")
        if label is None:
            continue  # 午休, 课间操, or a teacher sheet's clock times
        for col, day in days.items():
            text = _text(cells[col]) if col < len(cells) else ""
            for line in filter(None, (ln.strip() for ln in text.splitlines())):
                klass, _, rest = line.rpartition(": ") if ": " in line else ("", "", line)
                klass = klass or (named[0] if named else "")
                if not rest.split():
                    continue
                rows.append((number, {"subject": rest.split()[0], "class": klass, "day": day,
                                      "period": label.group(1), "sheet": sheet,
                                      "optional": "1"}))
    return rows


def _day(value: str) -> int:
    m = re.fullmatch(r"(?:周|星期|礼拜)?([1-5一二三四五])", value)
    if m is None:
        raise ValueError(f"星期应为 1-5 或 周一..周五, 而不是 {value!r}")
    return int(_DAYS.get(m.group(1), m.group(1)))


def _period(value: str) -> int:
    m = re.fullmatch(r"第?\s*(\d+)\s*节?", value)
    if m is None:
        raise ValueError(f"节次应为数字或 第N节, 而不是 {value!r}")
    return int(m.group(1))


class _NoCourse(ValueError):
    """No consortium course matches: a grid's own-school lesson, skipped."""


def _lock(c: Consortium, row: dict[str, str], cache: dict[str, list[Slot]]) -> Lock:
    """The lock a row asks for, or ValueError saying what is wrong with it."""
    course_id, subject, klass = row.get("course", ""), row.get("subject", ""), row.get("class", "")
    if not row.get("day"):
        raise ValueError("缺少 星期")
    day = _day(row["day"])
    classes = [k for k, v in c.classes.items() if klass and klass in (k, v.name)]
    if klass and not classes:
        raise ValueError(f"没有名为 {klass!r} 的班级")
    if course_id:
        if course_id not in c.courses and course_id not in c.groups:
            raise ValueError(f"没有编号为 {course_id!r} 的课程或教研组")
    elif subject and classes:
        found = [cid for cid, k in c.courses.items()
                 if k.subject == subject and set(classes) & set(k.classes)]
        if not found:
            raise _NoCourse(f"{klass} 没有{subject}课程, 请写明课程编号")
        if len(found) > 1:
            raise ValueError(f"{klass} 有 {len(found)} 门{subject}课程, 请写明课程编号")
        course_id = found[0]
    else:
        raise ValueError("需要 课程编号, 或 科目 与 班级")
    start = clock(row["start"], "开始") if row.get("start") else None
    if course_id in c.groups:
        if start is None:
            raise ValueError("教研活动需要 开始 时间")
        if course_id not in cache:
            cache[course_id] = meeting_slots(c, c.groups[course_id])
        if not any((s.day, s.at) == (day, start) for s in cache[course_id]):
            raise ValueError(
                f"{row['day']} {row['start']} 不能安排此教研 (成员不空闲或不在节次开始)"
            )
        return Lock(course_id, day, start)
    course = c.courses[course_id]
    if course_id not in cache:
        cache[course_id] = course_slots(c, course)
    period = _period(row["period"]) if row.get("period") else None
    if period is None and start is None:
        raise ValueError("需要 节次 或 开始")
    mine = [k for k in classes if k in course.classes]
    if classes and not mine:
        raise ValueError(f"{klass} 不上 {course_id}")
    if len(mine) > 1:
        raise ValueError(f"{course_id} 有 {len(mine)} 个名为 {klass!r} 的班级, 请写班级编号")
    for s in cache[course_id]:
        if s.day != day:
            continue
        if mine:
            k = mine[0]
            own = dict(s.class_periods)[k]
            bells = {q.index: q for q in c.campuses[c.classes[k].campus].on(day)}
            if own == period or (period is None and own in bells and bells[own].start == start):
                return Lock(course_id, day, s.at)
        elif s.at == period or (period is None and s.start == start):
            return Lock(course_id, day, s.at)
    when = f"第{period}节" if period is not None else row["start"]
    raise ValueError(
        f"{row['day']} {when} 不能上 {course_id}: 与主讲教师的节次对不齐, 或教师不空闲"
    )


def locks_from_rows(c: Consortium, rows: list[tuple[int, dict[str, str]]]) -> list[Lock]:
    errors: list[tuple[int | None, str]] = []
    locks: dict[tuple[str, int], tuple[int, Lock]] = {}
    cache: dict[str, list[Slot]] = {}
    for number, row in rows:
        try:
            lock = _lock(c, row, cache)
        except (ValueError, ModelError) as exc:
            if isinstance(exc, _NoCourse) and row.get("optional"):
                continue
            where = f"[{row['sheet']}] " if row.get("sheet") else ""
            errors.append((number, where + str(exc)))
            continue
        key = (lock.item, 0 if lock.item in c.groups else lock.day)
        if key in locks and locks[key][1] != lock:  # a class's rows of one lesson agree
            errors.append((number, f"与第 {locks[key][0]} 行的 {lock.item} 时间不同"))
        locks.setdefault(key, (number, lock))
    if errors:
        raise TimetableError(errors)
    result = [lock for _, lock in locks.values()]
    try:
        check_locks(dataclasses.replace(c, locks=result))
    except LockError as exc:
        raise TimetableError([(None, f"导入的课程无法同时成立: {exc}")]) from exc
    return result


def import_locks(c: Consortium, path: Path) -> list[Lock]:
    names = [*c.classes, *(k.name for k in c.classes.values())]
    return locks_from_rows(c, read_rows(path, names))


def plan_locks(plan: Plan) -> list[Lock]:
    return [Lock(s.item, s.day, s.at) for s in plan.lessons + plan.meetings]
