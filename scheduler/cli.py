"""`tongke schedule FILE`: match a consortium's timetable from the command line.

    tongke schedule config/consortia/huarong-changgong.toml \\
        [--import 课表.xlsx] [--excel OUT_DIR] [--ics OUT_DIR --term-start 2027-03-01]
        [--advice] [--store timetable.db] [--time-limit 10] [--greedy] [--json]

Prints the plan in Chinese (what was placed, what could not be and why, whether proven
optimal), with the solver's progress on stderr; exit status 2 when the file, the imported
timetable or the locks are refused (the message names the entry or row).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import sys
from pathlib import Path

from .advice import advise
from .export import DAY_NAMES, hhmm, write_excel
from .ical import TERM_WEEKS, write_ics
from .imports import TimetableError, import_locks
from .load import ModelError, load_file
from .model import Consortium
from .solve import LockError, Plan, greedy, solve
from .store import Store, plan_to_dict


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="统一课表: match a consortium file (TOML/JSON)")
    p.add_argument("file", type=Path)
    p.add_argument("--import", dest="timetable", type=Path,
                   help="CSV/Excel timetable whose lessons become locks")
    p.add_argument("--excel", type=Path, metavar="OUT_DIR", help="write Excel 课表 here")
    p.add_argument("--ics", type=Path, metavar="OUT_DIR", help="write iCalendar files here")
    p.add_argument("--term-start", type=datetime.date.fromisoformat,
                   help="first day of term for --ics (default: this week's Monday)")
    p.add_argument("--weeks", type=int, default=TERM_WEEKS, help="term length for --ics")
    p.add_argument("--advice", action="store_true", help="propose bell shifts for blocked lessons")
    p.add_argument("--store", type=Path, metavar="DB", help="save consortium, locks, plan (SQLite)")
    p.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds")
    p.add_argument("--greedy", action="store_true", help="the instant preview only")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except (ModelError, TimetableError, LockError) as exc:
        print(f"错误 / error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    c = load_file(args.file)
    if args.timetable is not None:
        locks = import_locks(c, args.timetable)
        c = dataclasses.replace(c, locks=c.locks + locks)
        print(f"导入 {len(locks)} 项锁定 (来自 {args.timetable.name})", file=sys.stderr)

    def progress(seconds: float, objective: float) -> None:
        print(f"  求解中 {seconds:5.2f} 秒, 目标值 {objective:,.0f}", file=sys.stderr)

    plan = greedy(c) if args.greedy else solve(c, args.time_limit, progress=progress)
    if args.json:
        print(json.dumps(plan_to_dict(plan), ensure_ascii=False, indent=1))
    else:
        _summary(c, plan)
    if args.advice:
        limit = min(args.time_limit, 5.0)
        proposals = advise(c, plan=plan, verify=lambda x: solve(x, limit))
        print("作息调整建议:" if proposals else "作息调整建议: 无 (没有因作息对不齐而排不下的课)")
        for a in proposals:
            print(f"  - {a.text(c)}")
    if args.excel is not None:
        for path in write_excel(c, plan, args.excel):
            print(f"写入 {path}", file=sys.stderr)
    if args.ics is not None:
        today = datetime.date.today()
        start = args.term_start or today - datetime.timedelta(days=today.weekday())
        paths = write_ics(c, plan, args.ics, start, args.weeks)
        print(f"写入 {len(paths)} 个日历文件到 {args.ics}", file=sys.stderr)
    if args.store is not None:
        store = Store(args.store)
        try:
            store.put_consortium(args.file.read_text(encoding="utf-8"),
                                 "json" if args.file.suffix == ".json" else "toml")
            store.put_locks(c.id, c.locks)
            store.put_plan(c.id, plan)
        finally:
            store.close()
        print(f"已保存到 {args.store}", file=sys.stderr)
    return 0


def _summary(c: Consortium, plan: Plan) -> None:
    asked = sum(k.per_week for k in c.courses.values())
    proven = "已证明最优" if plan.proven_optimal else "未证明最优"
    print(f"{c.name}: 已排 {plan.placed}/{asked} 节, 教研 {len(plan.meetings)}/{len(c.groups)} 项,"
          f" {proven} ({plan.status}, {plan.seconds:.2f} 秒)")
    for s in sorted(plan.lessons + plan.meetings, key=lambda s: (s.day, s.start, s.item)):
        if s.item in c.groups:
            what = f"{c.groups[s.item].subject}教研 (线上)"
        else:
            course = c.courses[s.item]
            kind = "走教" if course.local else "同步"
            what = f"{course.grade}年级{course.subject} {c.teachers[course.teacher].name} [{kind}]"
        print(f"  {DAY_NAMES[s.day]} {hhmm(s.start)}–{hhmm(s.end)} {what} ({s.item})")
    for u in plan.unplaced:
        print(f"  未排: {u.item} 缺 {u.missing} 节: {u.reason}")
