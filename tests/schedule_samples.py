"""Small consortia for the scheduler tests, as the TOML loader's dicts."""

from __future__ import annotations

import copy
from typing import Any

BASE: dict[str, Any] = {
    "id": "yandi",
    "name": "炎帝学校教联体",
    "campuses": [
        {"id": "core", "name": "炎帝学校", "bells": ["08:00", "08:50", "09:50", "10:40"]},
        # five minutes later: 35 of 40 minutes overlap, still placeable
        {"id": "lsh", "name": "烈山湖学校", "bells": ["08:05", "08:55", "09:55", "10:45"]},
        # twenty minutes later: at most 20 minutes overlap, never placeable with the core
        {"id": "far", "name": "厉山镇中心学校", "bells": ["08:20", "09:10", "10:10", "11:00"]},
    ],
    "classes": [
        {"id": "core-7-1", "name": "七(1)班", "campus": "core", "grade": 7},
        {"id": "lsh-7-1", "name": "七(1)班", "campus": "lsh", "grade": 7},
        {"id": "far-7-1", "name": "七(1)班", "campus": "far", "grade": 7},
    ],
    "teachers": [
        {"id": "wang", "name": "王老师", "campus": "core", "subjects": ["语文"]},
        {"id": "li", "name": "李老师", "campus": "core", "subjects": ["数学"]},
        {"id": "zhao", "name": "赵老师", "campus": "core", "subjects": ["音乐"],
         "itinerant": True},
    ],
    "courses": [
        {"id": "chinese", "subject": "语文", "grade": 7, "teacher": "wang",
         "classes": ["core-7-1", "lsh-7-1"], "per_week": 3},
    ],
    "travel": [{"a": "core", "b": "lsh", "minutes": 25}],
}


def consortium(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    for key, value in changes.items():
        data[key] = value
    return data
