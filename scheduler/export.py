"""A plan as each reader needs it: Excel 课表 per campus, class and teacher (a weekly grid, one
sheet each, days 周一..周五 as columns and periods with their clock times as rows), and the flat
明细 list (also CSV) that `imports.py` reads back as locks.

    entries(c, plan, view, key) -> [Entry]    # view: "campus" | "class" | "teacher"
    grid(c, plan, view, key) -> Grid          # rows, columns, cell texts
    workbook(c, plan, view, keys=None) -> openpyxl.Workbook   # a sheet per key, then 明细
    write_excel(c, plan, out_dir) -> [Path]   # <id>-校区课表.xlsx, -班级课表.xlsx, -教师课表.xlsx
    detail_rows(c, plan) -> [dict]            # DETAIL_COLUMNS, a row per lesson per class
    write_csv(c, plan, path)                  # 明细 as CSV (UTF-8 with BOM: Excel opens it)

Times shown are each reader's own: a class sees its campus's period (it may differ from the
master teacher's by the few minutes `min_overlap` allows), a teacher sees the teacher's.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter

from .model import WEEKDAYS, Consortium
from .slots import Slot
from .solve import Plan

DAY_NAMES = {1: "周一", 2: "周二", 3: "周三", 4: "周四", 5: "周五"}
VIEWS = {"campus": "校区课表", "class": "班级课表", "teacher": "教师课表"}
SYNC, LOCAL, MEETING = "同步", "走教", "教研"
DETAIL_SHEET = "明细"
DETAIL_COLUMNS = (
    "课程编号", "科目", "年级", "教师", "班级", "校区", "星期", "节次", "开始", "结束", "类型",
)


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Entry:
    """One lesson or meeting in one reader's week."""

    item: str
    kind: str  # SYNC, LOCAL or MEETING
    day: int
    start: int
    end: int
    period: int | None  # the reader's period index; None for a teacher's clock-time rows
    text: str  # what the grid cell shows
    where: str  # campus name, or 线上
    detail: str = ""  # who else, for a calendar's description


def _lesson_text(c: Consortium, s: Slot) -> tuple[str, str, str]:
    course = c.courses[s.item]
    kind = LOCAL if course.local else SYNC
    teacher = c.teachers[course.teacher]
    classes = "、".join(c.classes[k].name for k, _ in s.class_periods)
    detail = f"{kind}课; 主讲 {teacher.name} ({c.campuses[teacher.campus].name}); 班级: {classes}"
    return f"{course.subject} {teacher.name} 〔{kind}〕", kind, detail


def entries(c: Consortium, plan: Plan, view: str, key: str) -> list[Entry]:
    out: list[Entry] = []
    if view in ("class", "campus"):
        for s in plan.lessons:
            text, kind, detail = _lesson_text(c, s)
            for k, p in s.class_periods:
                klass = c.classes[k]
                if (k if view == "class" else klass.campus) != key:
                    continue
                campus = c.campuses[klass.campus]
                period = next(q for q in campus.on(s.day) if q.index == p)
                label = text if view == "class" else f"{klass.name}: {text}"
                out.append(Entry(s.item, kind, s.day, period.start, period.end, p, label,
                                 campus.name, detail))
    elif view == "teacher":
        for s in plan.lessons:
            if c.courses[s.item].teacher != key:
                continue
            text, kind, detail = _lesson_text(c, s)
            classes = "、".join(c.classes[k].name for k, _ in s.class_periods)
            out.append(Entry(s.item, kind, s.day, s.start, s.end, None, f"{text} {classes}",
                             c.campuses[s.campus].name, detail))
        for s in plan.meetings:
            group = c.groups[s.item]
            if key in group.members:
                names = "、".join(c.teachers[m].name for m in group.members)
                out.append(Entry(s.item, MEETING, s.day, s.start, s.end, None,
                                 f"{group.subject}教研 〔线上〕", "线上",
                                 f"线上教研 ({group.subject}); 成员: {names}"))
    else:
        raise ValueError(f"view 应为 campus / class / teacher, 而不是 {view!r}")
    return sorted(out, key=lambda e: (e.day, e.start, e.text))


def title(c: Consortium, view: str, key: str) -> str:
    table = {"campus": c.campuses, "class": c.classes, "teacher": c.teachers}[view]
    return table[key].name


def keys(c: Consortium, view: str) -> list[str]:
    return list({"campus": c.campuses, "class": c.classes, "teacher": c.teachers}[view])


@dataclass
class Grid:
    title: str
    rows: list[str]  # row labels: 第N节 with its clock time, or a clock interval
    cells: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # (row, day)
    notes: list[str] = field(default_factory=list)  # under the grid: days with own bells


def grid(c: Consortium, plan: Plan, view: str, key: str) -> Grid:
    found = entries(c, plan, view, key)
    g = Grid(f"{c.name} {title(c, view, key)} {VIEWS[view]}", [])
    if view == "teacher":
        home = c.campuses[c.teachers[key].campus]
        spans = sorted({(p.start, p.end) for p in home.on(1)} | {(e.start, e.end) for e in found})
        g.rows = [f"{hhmm(a)}–{hhmm(b)}" for a, b in spans]
        for e in found:
            g.cells.setdefault((spans.index((e.start, e.end)), e.day), []).append(e.text)
        return g
    campus = c.campuses[key if view == "campus" else c.classes[key].campus]
    count = max(len(campus.on(d)) for d in WEEKDAYS)
    usual = {}
    for index in range(1, count + 1):
        times = [(p.start, p.end) for d in WEEKDAYS for p in campus.on(d) if p.index == index]
        usual[index] = max(set(times), key=times.count)  # the time most days ring it
        g.rows.append(f"第{index}节 {hhmm(usual[index][0])}–{hhmm(usual[index][1])}")
    for d in WEEKDAYS:
        own = [p for p in campus.on(d) if (p.start, p.end) != usual.get(p.index)]
        if own or len(campus.on(d)) < count:
            times = ", ".join(f"第{p.index}节 {hhmm(p.start)}–{hhmm(p.end)}" for p in own)
            g.notes.append(f"注: {DAY_NAMES[d]}作息不同 ({len(campus.on(d))} 节) {times}".rstrip())
    for e in found:
        assert e.period is not None
        text = e.text
        if (e.start, e.end) != usual[e.period]:  # e.g. Friday's own bells
            text += f" ({hhmm(e.start)}–{hhmm(e.end)})"
        g.cells.setdefault((e.period - 1, e.day), []).append(text)
    return g


_THIN = Side(style="thin", color="999999")
_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)
_SYNC_FILL = PatternFill("solid", fgColor="E3F0FF")


def _sheet_name(name: str, taken: set[str]) -> str:
    base = re.sub(r"[\[\]:*?/\\]", "_", name)[:28] or "课表"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base[:26]}-{n}", n + 1
    taken.add(candidate)
    return candidate


def workbook(c: Consortium, plan: Plan, view: str, only: list[str] | None = None) -> Workbook:
    """A sheet per campus / class / teacher (all of them unless `only`), then 明细: the lessons
    shown, one row per class, as `imports.py` reads them."""
    wb = Workbook()
    wb.remove(wb.active)
    taken: set[str] = set()
    chosen = only if only is not None else keys(c, view)
    for key in chosen:
        g = grid(c, plan, view, key)
        ws = wb.create_sheet(_sheet_name(title(c, view, key), taken))
        ws.append([g.title])
        ws["A1"].font = Font(bold=True, size=13)
        ws.append(["节次"] + [DAY_NAMES[d] for d in WEEKDAYS])
        for col in range(1, len(WEEKDAYS) + 2):
            cell = ws.cell(row=2, column=col)
            cell.font = Font(bold=True)
            cell.alignment = Alignment(horizontal="center")
            cell.border = _BORDER
        for r, label in enumerate(g.rows):
            ws.append([label] + ["\n".join(g.cells.get((r, d), [])) for d in WEEKDAYS])
            for col in range(1, len(WEEKDAYS) + 2):
                cell = ws.cell(row=r + 3, column=col)
                cell.alignment = Alignment(wrap_text=True, vertical="center")
                cell.border = _BORDER
                if col > 1 and f"〔{SYNC}〕" in str(cell.value or ""):
                    cell.fill = _SYNC_FILL
        for note in g.notes:
            ws.append([note])
        ws.column_dimensions["A"].width = 18
        for col in range(2, len(WEEKDAYS) + 2):
            ws.column_dimensions[get_column_letter(col)].width = 30 if view != "class" else 22
        ws.freeze_panes = "B3"
    detail = wb.create_sheet(DETAIL_SHEET)
    detail.append(list(DETAIL_COLUMNS))
    for row in detail_rows(c, plan, view, only):
        detail.append([row[k] for k in DETAIL_COLUMNS])
    return wb


def detail_rows(
    c: Consortium, plan: Plan, view: str | None = None, only: list[str] | None = None
) -> list[dict[str, str | int]]:
    """A row per lesson and class (its own period and times) and per research meeting, for
    the campuses / classes / teachers `only` of `view` (everything when None)."""
    rows: list[dict[str, str | int]] = []

    def wanted(klass: str | None, teachers: tuple[str, ...]) -> bool:
        if view is None or only is None:
            return True
        if view == "teacher":
            return any(t in only for t in teachers)
        if klass is None:
            return False
        return (klass if view == "class" else c.classes[klass].campus) in only

    for s in sorted(plan.lessons, key=lambda s: (s.day, s.start, s.item)):
        course = c.courses[s.item]
        for k, p in s.class_periods:
            if not wanted(k, (course.teacher,)):
                continue
            klass = c.classes[k]
            period = next(q for q in c.campuses[klass.campus].on(s.day) if q.index == p)
            rows.append({
                "课程编号": s.item, "科目": course.subject, "年级": course.grade,
                "教师": c.teachers[course.teacher].name, "班级": klass.name,
                "校区": c.campuses[klass.campus].name, "星期": DAY_NAMES[s.day], "节次": p,
                "开始": hhmm(period.start), "结束": hhmm(period.end),
                "类型": LOCAL if course.local else SYNC,
            })
    for s in sorted(plan.meetings, key=lambda s: (s.day, s.start, s.item)):
        group = c.groups[s.item]
        if not wanted(None, group.members):
            continue
        rows.append({
            "课程编号": s.item, "科目": group.subject, "年级": "",
            "教师": "、".join(c.teachers[m].name for m in group.members), "班级": "",
            "校区": "线上", "星期": DAY_NAMES[s.day], "节次": "", "开始": hhmm(s.start),
            "结束": hhmm(s.end), "类型": MEETING,
        })
    return rows


def write_excel(c: Consortium, plan: Plan, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for view, name in VIEWS.items():
        path = out_dir / f"{c.id}-{name}.xlsx"
        workbook(c, plan, view).save(path)
        paths.append(path)
    return paths


def write_csv(c: Consortium, plan: Plan, path: Path) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(DETAIL_COLUMNS))
        writer.writeheader()
        writer.writerows(detail_rows(c, plan))
