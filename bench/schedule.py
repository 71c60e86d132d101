"""`tongke bench schedule`: greedy against CP-SAT on a generated county, in the same run.

Each consortium: a core campus and three members whose bells start 0-15 minutes later (in
5-minute steps), one class per grade 7-9 per campus, 20 synchronous lessons a week taught from
the core by six master teachers, five itinerant (走教) teachers with in-person lessons at two
or three campuses, and three research groups. With `--shared`, consortia go in pairs whose
second borrows the first's last itinerant teacher (home: the first's core campus), so the pair
is solved together (`scheduler/county.py`); otherwise each consortium is solved on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any

from scheduler.county import solve_county
from scheduler.load import load
from scheduler.model import Consortium
from scheduler.solve import Plan, greedy, upper_bound

SUBJECTS = ("语文", "数学", "英语", "物理", "道德与法治", "历史")
ARTS = ("音乐", "美术", "体育", "信息技术", "心理健康")


def generate(index: int, rng: random.Random) -> dict[str, Any]:
    pre = f"k{index}-"  # ids are the county's: consortia sharing a teacher are merged
    campuses = []
    for k in range(4):
        offset = 0 if k == 0 else rng.choice((0, 5, 10, 15))
        starts = [8 * 60, 8 * 60 + 50, 9 * 60 + 50, 10 * 60 + 40, 14 * 60, 14 * 60 + 50,
                  15 * 60 + 40]
        bells = [f"{(s + offset) // 60:02d}:{(s + offset) % 60:02d}" for s in starts]
        campuses.append({"id": f"{pre}c{k}", "name": f"第{index}联体{k}校", "bells": bells})
    classes = [
        {"id": f"{pre}c{k}-g{g}", "name": f"{g}年级", "campus": f"{pre}c{k}", "grade": g}
        for k in range(4) for g in (7, 8, 9)
    ]
    teachers = [
        {"id": f"{pre}m{i}", "name": f"主讲{i}", "campus": f"{pre}c0", "subjects": [SUBJECTS[i]]}
        for i in range(6)
    ] + [
        {"id": f"{pre}i{i}", "name": f"走教{i}", "campus": f"{pre}c0", "subjects": [ARTS[i]],
         "itinerant": True}
        for i in range(5)
    ]
    courses = []
    lessons = 0
    while lessons < 20:  # synchronous: one subject, one grade, the core and 1-3 members
        i, g = rng.randrange(6), rng.choice((7, 8, 9))
        members = rng.sample(range(1, 4), rng.randint(1, 3))
        per_week = min(rng.randint(1, 3), 20 - lessons)
        courses.append({
            "id": f"{pre}s{len(courses)}", "subject": SUBJECTS[i], "grade": g,
            "teacher": f"{pre}m{i}", "per_week": per_week,
            "classes": [f"{pre}c0-g{g}"] + [f"{pre}c{k}-g{g}" for k in members],
        })
        lessons += per_week
    for i in range(5):  # itinerant: in person at 2-3 member campuses, 1-3 classes at each
        for k in rng.sample(range(1, 4), rng.randint(2, 3)):
            for g in rng.sample((7, 8, 9), rng.randint(1, 3)):
                courses.append({
                    "id": f"{pre}l{i}-{k}-{g}", "subject": ARTS[i], "grade": g,
                    "teacher": f"{pre}i{i}", "classes": [f"{pre}c{k}-g{g}"], "per_week": 1,
                    "local": True,
                })
    groups = [
        {"id": f"{pre}g{j}", "subject": SUBJECTS[j], "members": [f"{pre}m{j}", f"{pre}m{j + 3}"],
         "minutes": 40, "hosts": [f"{pre}c{k}" for k in range(4)]}
        for j in range(3)
    ]
    travel = [
        {"a": f"{pre}c{a}", "b": f"{pre}c{b}", "minutes": rng.randint(15, 40)}
        for a in range(4) for b in range(a + 1, 4)
    ]
    return {"id": f"k{index}", "name": f"第{index}教联体", "campuses": campuses,
            "classes": classes, "teachers": teachers, "courses": courses, "groups": groups,
            "travel": travel}


def share(first: dict[str, Any], second: dict[str, Any], rng: random.Random) -> None:
    """`second` gives up its last itinerant teacher and borrows `first`'s (home: `first`'s core
    campus, which `second` then lists too, with travel from there to its campuses)."""
    lent = next(t for t in reversed(first["teachers"]) if t.get("itinerant"))
    gone = next(t for t in reversed(second["teachers"]) if t.get("itinerant"))
    home = next(c for c in first["campuses"] if c["id"] == lent["campus"])
    second["teachers"] = [t for t in second["teachers"] if t is not gone] + [lent]
    second["campuses"].append(home)
    for course in second["courses"]:
        if course["teacher"] == gone["id"]:
            course["teacher"] = lent["id"]
    second["travel"] += [
        {"a": home["id"], "b": c["id"], "minutes": rng.randint(20, 50)}
        for c in second["campuses"] if c is not home
    ]


def _figures(
    plans: list[Plan], county: list[Consortium], seconds: float, sync_bound: int
) -> dict[str, Any]:
    sync = [s for p, c in zip(plans, county, strict=True) for s in p.lessons
            if not c.courses[s.item].local]
    return {
        "seconds": round(seconds, 3),
        "sync_placed": len(sync),
        "sync_upper_bound": sync_bound,
        "sync_requested": sum(co.per_week for c in county for co in c.courses.values()
                              if not co.local),
        "overlap_minutes": sum(s.overlap for s in sync),
        "itinerant_placed": sum(1 for p, c in zip(plans, county, strict=True)
                                for s in p.lessons if c.courses[s.item].local),
        "itinerant_requested": sum(co.per_week for c in county for co in c.courses.values()
                                   if co.local),
        "teacher_campus_days": sum(p.campus_days(c) for p, c in zip(plans, county, strict=True)),
        "meetings_placed": sum(len(p.meetings) for p in plans),
        "meetings_requested": sum(len(c.groups) for c in county),
        "proven_optimal_consortia": sum(p.proven_optimal for p in plans),
    }


def run(
    consortia: int, seed: int, time_limit_s: float, shared: bool = False, verbose: bool = False
) -> dict[str, Any]:
    rng = random.Random(seed)
    raw = [generate(i, rng) for i in range(consortia)]
    if shared:
        for first, second in zip(raw[::2], raw[1::2], strict=False):
            share(first, second, rng)
    county = [load(data) for data in raw]
    sync_bound = sum(
        min(co.per_week, len({s.day for s in _sync_slots(c, cid)}))
        for c in county for cid, co in c.courses.items() if not co.local
    )
    t0 = time.monotonic()
    preview = solve_county(county, method=greedy)
    greedy_s = time.monotonic() - t0
    done = 0

    def show(plans: list[Plan]) -> None:  # progress, on stderr: stdout is the JSON
        nonlocal done
        done += len(plans)
        if verbose:
            optimal = "proven optimal" if plans[0].proven_optimal else plans[0].status
            print(f"  {done}/{len(county)} consortia, {time.monotonic() - t0:.1f} s, "
                  f"{'+'.join(p.consortium for p in plans)}: {optimal}", file=sys.stderr)

    t0 = time.monotonic()
    plans = solve_county(county, time_limit_s=time_limit_s, on_plan=show)
    cpsat_s = time.monotonic() - t0
    return {
        "consortia": consortia,
        "seed": seed,
        "shared_teacher_pairs": consortia // 2 if shared else 0,
        "time_limit_per_solve_s": time_limit_s,
        "sync_upper_bound": sync_bound,
        "lessons_upper_bound": sum(upper_bound(c) for c in county),
        "greedy": _figures(preview, county, greedy_s, sync_bound),
        "cpsat": _figures(plans, county, cpsat_s, sync_bound),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _sync_slots(c: Consortium, cid: str):  # noqa: ANN202
    from scheduler.slots import course_slots

    return course_slots(c, c.courses[cid])


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("schedule", help="timetable matching: greedy vs CP-SAT")
    p.add_argument("--consortia", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--time-limit", type=float, default=10.0, help="per consortium, seconds")
    p.add_argument("--shared", action="store_true",
                   help="pairs of consortia share an itinerant teacher (solved together)")
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def run_schedule_cli(args: argparse.Namespace) -> int:
    result = run(args.consortia, args.seed, args.time_limit, args.shared, verbose=not args.json)
    print(json.dumps(result, ensure_ascii=False))
    return 0
