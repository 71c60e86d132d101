"""A consortium from TOML (or the same structure as JSON), validated with errors that say where.

```toml
id = "yandi"
name = "炎帝学校教联体"
min_overlap = 35

[[campuses]]
id = "yandi"; name = "炎帝学校"
bells = ["08:00", "08:50", "09:50", "10:40", "14:00", "14:50"]   # period starts, 40 min
# optional: bells_by_day = { 5 = ["08:00", ...] }  (1 = Monday)

[[classes]]  id, name, campus, grade
[[teachers]] id, name, campus, subjects = [..], itinerant = false,
             unavailable = [[day, "HH:MM", "HH:MM"]]
[[courses]]  id, subject, grade, teacher, classes = [..], per_week = 1, local = false
[[groups]]   id, subject, members = [..], minutes = 40, hosts = [campus ids]
[[travel]]   a, b, minutes
[[locks]]    item, day, at   (period index for a course, "HH:MM" for a meeting)
```
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

from .model import (
    DEFAULT_MIN_OVERLAP,
    WEEKDAYS,
    Campus,
    Consortium,
    Course,
    Lock,
    Period,
    ResearchGroup,
    SchoolClass,
    Teacher,
)

PERIOD_MINUTES = 40


class ModelError(ValueError):
    """What is wrong and where: `where` is a path like `courses[3].classes`."""

    def __init__(self, where: str, message: str, line: int | None = None) -> None:
        at = f" (第 {line} 行)" if line else ""
        super().__init__(f"{where}{at}: {message}")
        self.where = where
        self.message = message
        self.line = line


FORMATS = ("toml", "json")


def load_file(path: Path) -> Consortium:
    """Syntax errors carry the parser's line; a TOML file's other errors get the line of the
    entry they name when it is written as `[[table]]` and `key = ...` (the usual layout)."""
    fmt = "json" if path.suffix == ".json" else "toml"
    return load_text(path.read_text(encoding="utf-8"), fmt, path.name)


def load_text(text: str, fmt: str = "toml", name: str = "(源文本)") -> Consortium:
    """A consortium from TOML or JSON source text; `name` says where in syntax errors."""
    if fmt not in FORMATS:
        raise ModelError(name, f"格式应为 toml 或 json, 而不是 {fmt!r}")
    try:
        data = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(name, f"不是有效的 {fmt.upper()}: {exc}") from exc
    try:
        return load(data)
    except ModelError as exc:
        if fmt == "json":
            raise
        raise ModelError(exc.where, exc.message, toml_line(text, exc.where)) from exc


_PATH = re.compile(r"^(?:(\w+)\[(\d+)\]\.)?(\w+)")


def toml_line(text: str, where: str) -> int | None:
    """The 1-based line of `table[i].key` (the i-th `[[table]]`'s `key = ...`, else its header)
    or of a top-level `key`; None when the file is laid out otherwise."""
    match = _PATH.match(where)
    if match is None:
        return None
    table, index, key = match.groups()
    lines = text.splitlines()
    header = -1  # top level: before any table
    if table is not None:
        headers = [n for n, ln in enumerate(lines) if ln.strip() == f"[[{table}]]"]
        if int(index) >= len(headers):
            return None
        header = headers[int(index)]
    for n in range(header + 1, len(lines)):
        stripped = lines[n].strip()
        if stripped.startswith("["):
            break  # the next table
        if re.match(rf"{re.escape(key)}\s*=", stripped):
            return n + 1
    return header + 1 if header >= 0 else None


def clock(value: Any, where: str) -> int:
    """"08:50" -> 530 (minutes after midnight)."""
    if not isinstance(value, str) or len(value.split(":")) != 2:
        raise ModelError(where, f"时间应写成 HH:MM, 而不是 {value!r}")
    h, m = value.split(":")
    if not (h.isdigit() and m.isdigit() and 0 <= int(h) < 24 and 0 <= int(m) < 60):
        raise ModelError(where, f"时间应写成 HH:MM, 而不是 {value!r}")
    return int(h) * 60 + int(m)


def _list(data: dict, key: str) -> list[dict]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ModelError(key, "应为表的数组 ([[...]])")
    return value


def _req(item: dict, key: str, where: str, kind: type = str) -> Any:
    if key not in item:
        raise ModelError(f"{where}.{key}", "缺少此项")
    value = item[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ModelError(f"{where}.{key}", f"应为整数, 而不是 {value!r}")
    if kind is str and not (isinstance(value, str) and value.strip()):
        raise ModelError(f"{where}.{key}", f"应为非空文字, 而不是 {value!r}")
    return value


def _known(value: Any, table: dict, where: str, what: str) -> Any:
    """A reference to another entry: it must exist."""
    if value not in table:
        raise ModelError(where, f"没有编号为 {value!r} 的{what}")
    return value


def _unique(ids: list[str], where: str) -> None:
    seen: set[str] = set()
    for i, value in enumerate(ids):
        if value in seen:
            raise ModelError(f"{where}[{i}].id", f"重复的编号 {value!r}")
        seen.add(value)


def _periods(item: dict, where: str) -> tuple[Period, ...]:
    bells = item.get("bells")
    if not isinstance(bells, list) or not bells:
        raise ModelError(f"{where}.bells", "缺少作息时间 (每节课的开始时间)")
    by_day = item.get("bells_by_day", {})
    if not isinstance(by_day, dict) or not all(
        str(k) in map(str, WEEKDAYS) and isinstance(v, list) and v for k, v in by_day.items()
    ):
        raise ModelError(f"{where}.bells_by_day", "应为 {星期几(1-5) = [每节课的开始时间]}")
    by_day = {str(k): v for k, v in by_day.items()}
    periods = []
    for day in WEEKDAYS:
        starts = by_day.get(str(day), bells)
        place = f"{where}.bells_by_day.{day}" if str(day) in by_day else f"{where}.bells"
        minutes = [clock(s, f"{place}[{i}]") for i, s in enumerate(starts)]
        for i in range(1, len(minutes)):
            if minutes[i] < minutes[i - 1] + PERIOD_MINUTES:
                raise ModelError(f"{place}[{i}]", "与上一节课重叠")
        periods += [Period(day, i + 1, m, m + PERIOD_MINUTES) for i, m in enumerate(minutes)]
    return tuple(periods)


def load(data: dict[str, Any]) -> Consortium:
    if not isinstance(data, dict):
        raise ModelError("(顶层)", "应为一个表 (TOML 文件或 JSON 对象)")
    campuses = {}
    raw = _list(data, "campuses")
    _unique([c.get("id", "") for c in raw], "campuses")
    for i, c in enumerate(raw):
        where = f"campuses[{i}]"
        cid = _req(c, "id", where)
        campuses[cid] = Campus(cid, _req(c, "name", where), _periods(c, where))
    if not campuses:
        raise ModelError("campuses", "至少需要一个校区")

    classes = {}
    raw = _list(data, "classes")
    _unique([c.get("id", "") for c in raw], "classes")
    for i, c in enumerate(raw):
        where = f"classes[{i}]"
        campus = _known(_req(c, "campus", where), campuses, f"{where}.campus", "校区")
        classes[c["id"]] = SchoolClass(
            _req(c, "id", where), _req(c, "name", where), campus, _req(c, "grade", where, int)
        )

    teachers = {}
    raw = _list(data, "teachers")
    _unique([t.get("id", "") for t in raw], "teachers")
    for i, t in enumerate(raw):
        where = f"teachers[{i}]"
        campus = _known(_req(t, "campus", where), campuses, f"{where}.campus", "校区")
        unavailable = []
        for j, u in enumerate(t.get("unavailable", [])):
            if not (isinstance(u, list) and len(u) == 3 and u[0] in WEEKDAYS):
                raise ModelError(f"{where}.unavailable[{j}]", "应为 [星期几(1-5), 开始, 结束]")
            start = clock(u[1], f"{where}.unavailable[{j}]")
            end = clock(u[2], f"{where}.unavailable[{j}]")
            if end <= start:
                raise ModelError(f"{where}.unavailable[{j}]", "结束时间应晚于开始时间")
            unavailable.append((u[0], start, end))
        teachers[t["id"]] = Teacher(
            _req(t, "id", where),
            _req(t, "name", where),
            campus,
            tuple(t.get("subjects", ())),
            bool(t.get("itinerant", False)),
            tuple(unavailable),
        )

    courses = {}
    raw = _list(data, "courses")
    _unique([c.get("id", "") for c in raw], "courses")
    for i, c in enumerate(raw):
        where = f"courses[{i}]"
        teacher = _known(_req(c, "teacher", where), teachers, f"{where}.teacher", "教师")
        members = c.get("classes")
        if not isinstance(members, list) or not members:
            raise ModelError(f"{where}.classes", "至少需要一个班级")
        grade = _req(c, "grade", where, int)
        for j, k in enumerate(members):
            _known(k, classes, f"{where}.classes[{j}]", "班级")
            if classes[k].grade != grade:  # a synchronous lesson is one grade's lesson
                raise ModelError(
                    f"{where}.classes[{j}]",
                    f"班级 {k!r} 是 {classes[k].grade} 年级, 课程是 {grade} 年级",
                )
        per_week = c.get("per_week", 1)
        if not isinstance(per_week, int) or not 1 <= per_week <= len(WEEKDAYS):
            raise ModelError(f"{where}.per_week", "每周节数应为 1 到 5")
        local = bool(c.get("local", False))
        if local and len(members) != 1:
            raise ModelError(f"{where}.classes", "走教课程只能对应一个班级")
        courses[c["id"]] = Course(
            _req(c, "id", where), _req(c, "subject", where), grade, teacher, tuple(members),
            per_week, local,
        )

    groups = {}
    raw = _list(data, "groups")
    _unique([g.get("id", "") for g in raw], "groups")
    for i, g in enumerate(raw):
        where = f"groups[{i}]"
        for key in ("members", "hosts"):
            if not isinstance(g.get(key, []), list):
                raise ModelError(f"{where}.{key}", "应为编号的列表 [...]")
        minutes = g.get("minutes", 40)
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 10 <= minutes <= 240:
            raise ModelError(f"{where}.minutes", f"应为 10 到 240 的整数 (分钟): {minutes!r}")
        if not g.get("members"):
            raise ModelError(f"{where}.members", "至少需要一位成员")
        for j, m in enumerate(g.get("members", [])):
            _known(m, teachers, f"{where}.members[{j}]", "教师")
        for j, h in enumerate(g.get("hosts", [])):
            _known(h, campuses, f"{where}.hosts[{j}]", "校区")
        groups[g["id"]] = ResearchGroup(
            _req(g, "id", where), _req(g, "subject", where), tuple(g.get("members", ())),
            minutes, tuple(g.get("hosts", ())),
        )

    travel = {}
    for i, t in enumerate(_list(data, "travel")):
        where = f"travel[{i}]"
        a = _known(_req(t, "a", where), campuses, f"{where}.a", "校区")
        b = _known(_req(t, "b", where), campuses, f"{where}.b", "校区")
        minutes = _req(t, "minutes", where, int)
        if minutes < 0:
            raise ModelError(f"{where}.minutes", "路程时间不能为负数")
        travel[(a, b)] = minutes

    locks = []
    for i, lk in enumerate(_list(data, "locks")):
        where = f"locks[{i}]"
        item = _req(lk, "item", where)
        if item not in courses and item not in groups:
            raise ModelError(f"{where}.item", f"没有编号为 {item!r} 的课程或教研组")
        day = _req(lk, "day", where, int)
        if day not in WEEKDAYS:
            raise ModelError(f"{where}.day", "星期几应为 1 到 5")
        at = lk.get("at")
        at = clock(at, f"{where}.at") if item in groups else _req(lk, "at", where, int)
        locks.append(Lock(item, day, at))

    overlap = data.get("min_overlap", DEFAULT_MIN_OVERLAP)
    if not isinstance(overlap, int) or not 1 <= overlap <= PERIOD_MINUTES:
        raise ModelError("min_overlap", f"应为 1 到 {PERIOD_MINUTES} 的整数 (分钟)")
    return Consortium(
        _req(data, "id", "(顶层)"), _req(data, "name", "(顶层)"), campuses, classes, teachers,
        courses, groups, travel, locks, overlap,
    )
