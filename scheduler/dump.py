"""A consortium back to the structure `load.py` reads, as data, JSON or TOML: the export side
of "the consortium as TOML/JSON" (e.g. after locks were added on the admin page).

    to_data(c) -> dict       # load(to_data(c)) == c
    to_json(c) -> str
    to_toml(c) -> str        # load_text(to_toml(c), "toml") == c; [[table]] / key = value
                             # layout, so load errors on an edited copy name the line
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from .model import WEEKDAYS, Campus, Consortium


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _bells(campus: Campus) -> dict[str, Any]:
    by_day = {d: [_hhmm(p.start) for p in campus.on(d)] for d in WEEKDAYS}
    usual = Counter(tuple(v) for v in by_day.values()).most_common(1)[0][0]
    out: dict[str, Any] = {"id": campus.id, "name": campus.name, "bells": list(usual)}
    other = {str(d): v for d, v in by_day.items() if tuple(v) != usual}
    if other:
        out["bells_by_day"] = other
    return out


def to_data(c: Consortium) -> dict[str, Any]:
    data: dict[str, Any] = {"id": c.id, "name": c.name, "min_overlap": c.min_overlap}
    data["campuses"] = [_bells(x) for x in c.campuses.values()]
    data["classes"] = [{"id": k.id, "name": k.name, "campus": k.campus, "grade": k.grade}
                       for k in c.classes.values()]
    data["teachers"] = []
    for t in c.teachers.values():
        row: dict[str, Any] = {"id": t.id, "name": t.name, "campus": t.campus,
                               "subjects": list(t.subjects)}
        if t.itinerant:
            row["itinerant"] = True
        if t.unavailable:
            row["unavailable"] = [[d, _hhmm(s), _hhmm(e)] for d, s, e in t.unavailable]
        data["teachers"].append(row)
    data["courses"] = []
    for k in c.courses.values():
        row = {"id": k.id, "subject": k.subject, "grade": k.grade, "teacher": k.teacher,
               "classes": list(k.classes), "per_week": k.per_week}
        if k.local:
            row["local"] = True
        data["courses"].append(row)
    data["groups"] = [{"id": g.id, "subject": g.subject, "members": list(g.members),
                       "minutes": g.minutes, "hosts": list(g.hosts)} for g in c.groups.values()]
    data["travel"] = [{"a": a, "b": b, "minutes": m} for (a, b), m in c.travel.items()]
    data["locks"] = [
        {"item": lk.item, "day": lk.day, "at": _hhmm(lk.at) if lk.item in c.groups else lk.at}
        for lk in c.locks
    ]
    return data


def to_json(c: Consortium) -> str:
    return json.dumps(to_data(c), ensure_ascii=False, indent=1)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a valid TOML basic string
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} as TOML")


def to_toml(c: Consortium) -> str:
    data = to_data(c)
    lines = [f"{k} = {_value(v)}" for k, v in data.items() if not isinstance(v, list)]
    for table, rows in data.items():
        if not isinstance(rows, list):
            continue
        for row in rows:
            lines += ["", f"[[{table}]]"] + [f"{k} = {_value(v)}" for k, v in row.items()]
    return "\n".join(lines) + "\n"
