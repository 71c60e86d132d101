"""The consortium's timetable inside the running server: the consortium (from
config/consortia/*.toml, then as staff last saved it), its locks and its current plan; the
matcher (greedy at once, CP-SAT in a worker thread with progress and a time limit); edits that
change nothing unless they validate; and what is on now / next for a class or a teacher, in
Asia/Shanghai clock time. The scheduler (scheduler/) is used through load_file/greedy/solve."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.load import ModelError, load_file
from scheduler.model import WEEKDAYS, Consortium, Lock
from scheduler.slots import Slot
from scheduler.solve import LockError, Plan, greedy, solve

from .timetable_store import Saved, SqliteTimetableStore

log = logging.getLogger(__name__)

TZ = ZoneInfo("Asia/Shanghai")
JOIN_EARLY = dt.timedelta(minutes=3)  # a standing link joins this long before the bell
DEFAULT_SOLVE_SECONDS = 10.0
MAX_SOURCE_CHARS = 200_000


def hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


_NUMERALS = "一二三四五六七八九"


def grade_name(grade: int) -> str:
    """7 -> 七年级, 10 -> 高一."""
    if 1 <= grade <= 9:
        return f"{_NUMERALS[grade - 1]}年级"
    if 10 <= grade <= 12:
        return f"高{_NUMERALS[grade - 10]}"
    return f"{grade}年级"


def room_name(item: str, day: dt.date, start: int) -> str:
    """The live room of one lesson or meeting: `<item>-<yyyymmdd>-<hhmm>`."""
    return f"{item}-{day:%Y%m%d}-{start // 60:02d}{start % 60:02d}"


def parse_room(room: str) -> tuple[str, dt.date, int] | None:
    """(item, date, start minute) of a room named by room_name; None for any other name."""
    parts = room.rsplit("-", 2)
    if len(parts) != 3 or not (len(parts[1]) == 8 and len(parts[2]) == 4):
        return None
    item, day, hm = parts
    if not (day.isdigit() and hm.isdigit()) or not item:
        return None
    try:
        date = dt.date(int(day[:4]), int(day[4:6]), int(day[6:]))
    except ValueError:
        return None
    hours, minutes = int(hm[:2]), int(hm[2:])
    if hours > 23 or minutes > 59:
        return None
    return item, date, hours * 60 + minutes


class EditError(ValueError):
    """An edit or a lock refused; nothing changed. `message` is Chinese, for staff."""

    def __init__(self, code: str, message: str, detail: str, line: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message
        self.detail = detail
        self.line = line


@dataclass
class Occurrence:
    """One lesson or meeting on a date: what a standing link joins or counts down to."""

    kind: str  # "lesson" | "meeting"
    item: str
    title: str
    room: str
    start: dt.datetime
    end: dt.datetime
    campuses: list[str]
    host_campus: str
    teacher: str
    subject: str
    grade: str

    def describe(self, now: dt.datetime) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "item": self.item,
            "title": self.title,
            "room": self.room,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "starts_in_s": max(0, round((self.start - now).total_seconds())),
            # when a standing link may join: JOIN_EARLY before the bell
            "opens_in_s": max(0, round((self.start - JOIN_EARLY - now).total_seconds())),
            "ends_in_s": max(0, round((self.end - now).total_seconds())),
        }


@dataclass
class Job:
    """One run of the matcher: the greedy preview at once, CP-SAT's progress as it improves."""

    id: str
    started: float
    greedy: dict[str, Any]
    state: str = "running"  # running | done | failed | superseded
    progress: list[dict[str, float]] = field(default_factory=list)
    result: dict[str, Any] | None = None
    error: str = ""
    preview: Plan | None = None  # the greedy plan, shown while CP-SAT runs
    limit_s: float = 0.0  # CP-SAT's time limit

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "greedy": self.greedy,
            "progress": list(self.progress),
            "result": self.result,
            "error": self.error,
            "limit_s": self.limit_s,
            "elapsed_s": round(time.time() - self.started, 1),
        }


def summary(plan: Plan) -> dict[str, Any]:
    return {
        "status": plan.status,
        "proven_optimal": plan.proven_optimal,
        "lessons": len(plan.lessons),
        "meetings": len(plan.meetings),
        "unplaced": len(plan.unplaced),
        "overlap_minutes": plan.overlap_minutes,
        "seconds": round(plan.seconds, 3),
        "moved": list(plan.moved),
    }


def parse_source(text: str, name: str) -> Consortium:
    """The consortium in a TOML text, or ModelError with the line (load_file's rules)."""
    with tempfile.TemporaryDirectory(prefix="tongke-tt-") as tmp:
        path = Path(tmp) / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return load_file(path)


class Timetable:
    """One consortium's timetable. Every change is checked first, then applied and saved;
    a failed check leaves the source, locks and plan as they were."""

    def __init__(
        self,
        source: str,
        store: SqliteTimetableStore,
        executor: ThreadPoolExecutor,
        *,
        saved: Saved | None = None,
        solve_seconds: float = DEFAULT_SOLVE_SECONDS,
        on_plan: Callable[[Timetable], None] | None = None,
    ) -> None:
        self._store = store
        self._executor = executor
        self._solve_seconds = solve_seconds
        self._on_plan = on_plan
        self.source = source
        self._base = parse_source(source, "consortium")
        self.locks: list[Lock] = []
        plan = None
        if saved is not None:
            try:  # what staff saved wins over the file, if it still loads
                base = parse_source(saved.source, self._base.id)
                self.source, self._base, self.locks = saved.source, base, list(saved.locks)
                plan = saved.plan
            except ModelError as exc:
                log.error("timetable %s: saved source no longer loads (%s); using the file",
                          self._base.id, exc)
        self.plan: Plan = plan or self._greedy(self.consortium)
        self._keep: Plan | None = None  # what the next solve should move least from
        self._version = 0  # bumped by every change: a solve of an older version is dropped
        self.jobs: dict[str, Job] = {}
        self._task: asyncio.Task[None] | None = None
        self._running: Job | None = None

    # -- what it is -----------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._base.id

    @property
    def consortium(self) -> Consortium:
        """The source's consortium with staff's locks added."""
        return replace(self._base, locks=[*self._base.locks, *self.locks])

    def locked(self, slot: Slot) -> bool:
        return (slot.item, slot.day, slot.at) in self._lock_keys()

    def _lock_keys(self) -> set[tuple[str, int, int]]:
        return {(lk.item, lk.day, lk.at) for lk in [*self._base.locks, *self.locks]}

    def _greedy(self, c: Consortium) -> Plan:
        try:
            return greedy(c)
        except LockError as exc:
            raise EditError("lock_conflict", f"锁定无法同时满足：{exc}", str(exc)) from exc

    def save(self) -> None:
        self._store.save(self.id, Saved(self.source, list(self.locks), self.plan))

    def _commit(
        self, *, source: str | None = None, base: Consortium | None = None,
        locks: list[Lock] | None = None, plan: Plan | None = None,
    ) -> None:
        """Saved first, then taken: a failed write leaves the timetable as it was."""
        new_locks = list(self.locks if locks is None else locks)
        new_plan = plan or self.plan
        self._store.save(self.id, Saved(source or self.source, new_locks, new_plan))
        self.source, self.locks, self.plan = source or self.source, new_locks, new_plan
        if base is not None:
            self._base = base
        self._version += 1
        if plan is not None and self._on_plan is not None:
            self._on_plan(self)

    # -- edits --------------------------------------------------------------------------------

    def edit_source(self, text: str) -> Plan:
        """Replace the consortium's TOML. Refused (EditError, nothing changed) when it does not
        load, changes the consortium's id, or leaves staff's locks unable to hold. Accepted: the
        greedy preview becomes the plan at once; the next solve moves least from the old one."""
        if len(text) > MAX_SOURCE_CHARS:
            raise EditError("too_large", "配置过长。", f"{len(text)} chars")
        try:
            base = parse_source(text, self.id)
        except ModelError as exc:
            raise EditError("invalid", f"配置有误：{exc}", str(exc), exc.line) from exc
        if base.id != self.id:
            raise EditError(
                "invalid", f"不能修改教联体编号 (应为 {self.id!r})。", f"id changed to {base.id!r}"
            )
        for lk in self.locks:
            if lk.item not in base.courses and lk.item not in base.groups:
                raise EditError(
                    "lock_conflict",
                    f"已锁定的 {lk.item} 在新配置中不存在，请先解除锁定。",
                    f"lock on unknown item {lk.item}",
                )
        plan = self._greedy(replace(base, locks=[*base.locks, *self.locks]))
        keep = self._keep or self.plan
        self._commit(source=text, base=base, plan=plan)
        self._keep = keep
        return plan

    def add_lock(self, lock: Lock) -> None:
        """Lock an item at (day, at). Refused when the item is unknown or the locks cannot
        hold together; the plan itself changes only when the matcher runs again."""
        c = self.consortium
        if lock.item not in c.courses and lock.item not in c.groups:
            raise EditError("not_found", f"没有编号为 {lock.item!r} 的课程或教研组。", "no item")
        if lock.day not in WEEKDAYS:
            raise EditError("invalid", "星期几应为 1 到 5。", f"day {lock.day}")
        if (lock.item, lock.day, lock.at) in {(k.item, k.day, k.at) for k in c.locks}:
            return
        self._greedy(replace(c, locks=[*c.locks, lock]))  # LockError -> EditError
        self._commit(locks=[*self.locks, lock])

    def remove_lock(self, lock: Lock) -> None:
        if lock in self._base.locks:
            raise EditError(
                "in_source", "此锁定写在教联体配置中，请在配置里删除。", "lock is in the source"
            )
        if lock not in self.locks:
            raise EditError("not_found", "没有这个锁定。", f"no lock {lock}")
        self._commit(locks=[lk for lk in self.locks if lk != lock])

    # -- the matcher ----------------------------------------------------------------------------

    def start_solve(self) -> Job:
        """Greedy now (it becomes the job's preview), CP-SAT in the worker thread; the job's
        answer becomes the plan unless the timetable changed meanwhile. One run at a time: a
        second request gets the running job."""
        if self._running is not None:
            return self._running
        c = self.consortium
        preview = self._greedy(c)
        job = Job(uuid.uuid4().hex[:12], time.time(), summary(preview), preview=preview,
                  limit_s=self._solve_seconds)
        self.jobs = {job.id: job, **{k: v for k, v in list(self.jobs.items())[:9]}}
        self._running = job
        self._task = asyncio.ensure_future(
            self._solve(job, c, self._keep or self.plan, self._version)
        )
        return job

    async def _solve(self, job: Job, c: Consortium, previous: Plan, version: int) -> None:
        loop = asyncio.get_running_loop()

        def progress(seconds: float, objective: float) -> None:  # in the worker thread
            point = {"seconds": round(seconds, 3), "objective": objective}
            loop.call_soon_threadsafe(job.progress.append, point)

        try:
            plan = await loop.run_in_executor(
                self._executor, lambda: solve(c, self._solve_seconds, previous, progress)
            )
        except Exception as exc:  # noqa: BLE001 - the job reports it; the plan stays
            log.exception("timetable %s: solve failed", self.id)
            job.state, job.error = "failed", str(exc)
            return
        finally:
            self._running = None
        job.result = summary(plan)
        if version != self._version:
            job.state = "superseded"
            job.error = "求解期间课表已被修改，结果未采用，请重新排课。"
            return
        try:
            self._commit(plan=plan)
        except OSError as exc:
            log.exception("timetable %s: plan not saved", self.id)
            job.state, job.error = "failed", f"课表未能保存：{exc}"
            return
        self._keep = None
        job.state = "done"

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # -- views ----------------------------------------------------------------------------------

    def entries(self, plan: Plan | None = None) -> list[dict[str, Any]]:
        """Every placed lesson and meeting (of the current plan, or `plan`), described for
        people and pages."""
        c = self.consortium
        plan = plan or self.plan
        locks = self._lock_keys()
        out = []
        for s in plan.lessons:
            course = c.courses[s.item]
            teacher = c.teachers[course.teacher]
            out.append({
                "item": s.item,
                "kind": "local" if course.local else "sync",
                "title": f"{grade_name(course.grade)}{course.subject}",
                "subject": course.subject,
                "grade": course.grade,
                "teacher": teacher.id,
                "teacher_name": teacher.name,
                "campus": s.campus,
                "day": s.day,
                "at": s.at,
                "start": hhmm(s.start),
                "end": hhmm(s.end),
                "overlap": s.overlap,
                "classes": [
                    {"id": k, "name": c.classes[k].name, "campus": c.classes[k].campus,
                     "period": p}
                    for k, p in s.class_periods
                ],
                "locked": (s.item, s.day, s.at) in locks,
            })
        for s in plan.meetings:
            group = c.groups[s.item]
            out.append({
                "item": s.item,
                "kind": "meeting",
                "title": f"{group.subject}教研",
                "subject": group.subject,
                "members": [{"id": m, "name": c.teachers[m].name} for m in group.members],
                "campus": s.campus,
                "day": s.day,
                "at": s.at,
                "start": hhmm(s.start),
                "end": hhmm(s.end),
                "classes": [],
                "locked": (s.item, s.day, s.at) in locks,
            })
        return out

    def week(
        self, *, campus: str = "", teacher: str = "", klass: str = "", plan: Plan | None = None
    ) -> dict[str, Any]:
        """One week (of the current plan, or `plan`) seen from a campus, a teacher or a class:
        the entries that concern it, each on the row of the view campus's period it overlaps
        most (0: none)."""
        c = self.consortium
        if klass:
            if klass not in c.classes:
                raise KeyError(f"class {klass!r}")
            view = c.classes[klass].campus
        elif teacher:
            if teacher not in c.teachers:
                raise KeyError(f"teacher {teacher!r}")
            view = c.teachers[teacher].campus
        else:
            if campus not in c.campuses:
                raise KeyError(f"campus {campus!r}")
            view = campus
        periods = c.campuses[view].periods
        chosen = []
        for e in self.entries(plan):
            mine = [k for k in e["classes"] if k["id"] == klass or k["campus"] == campus]
            if klass or campus:
                members = {m["id"] for m in e.get("members", [])}
                if not (mine or (campus and (
                    (e["kind"] != "meeting" and c.teachers[e["teacher"]].campus == campus)
                    or any(c.teachers[m].campus == campus for m in members)
                ))):
                    continue
            elif e.get("teacher") != teacher and teacher not in {
                m["id"] for m in e.get("members", [])
            }:
                continue
            start, end = _minutes(e["start"]), _minutes(e["end"])
            if mine and e["kind"] == "sync":  # a class keeps its own bells
                own = next(p for p in periods if p.day == e["day"] and p.index == mine[0]["period"])
                start, end = own.start, own.end
            row = max(
                (p for p in periods if p.day == e["day"]),
                key=lambda p: min(end, p.end) - max(start, p.start),
                default=None,
            )
            fits = row is not None and min(end, row.end) - max(start, row.start) > 0
            chosen.append({**e, "shown_start": hhmm(start), "shown_end": hhmm(end),
                           "row": row.index if fits and row else 0})
        return {
            "view": {"campus": campus, "teacher": teacher, "class": klass, "bells_of": view},
            "periods": [
                {"day": p.day, "index": p.index, "start": hhmm(p.start), "end": hhmm(p.end)}
                for p in periods
            ],
            "entries": chosen,
        }

    def item_name(self, item: str) -> str:
        """A course or group as staff call it: 七年级数学（王老师）, 数学教研."""
        c = self.consortium
        if item in c.courses:
            course = c.courses[item]
            teacher = c.teachers[course.teacher].name
            return f"{grade_name(course.grade)}{course.subject}（{teacher}）"
        if item in c.groups:
            return f"{c.groups[item].subject}教研"
        return item

    def unplaced(self) -> list[dict[str, Any]]:
        return [
            {"item": u.item, "name": self.item_name(u.item), "missing": u.missing,
             "reason": u.reason}
            for u in self.plan.unplaced
        ]

    def describe_locks(self) -> list[dict[str, Any]]:
        """Every lock, where it comes from (the source or staff) and when, in words."""
        c = self.consortium

        def when(lk: Lock) -> str:
            day = f"星期{'一二三四五'[lk.day - 1]}"
            return f"{day} {hhmm(lk.at)}" if lk.item in c.groups else f"{day} 第{lk.at}节"

        return [
            {"item": lk.item, "day": lk.day, "at": lk.at, "from": origin,
             "name": self.item_name(lk.item), "when": when(lk)}
            for origin, locks in (("config", self._base.locks), ("staff", self.locks))
            for lk in locks
        ]

    # -- now and next -------------------------------------------------------------------------

    def weekly(self, *, klass: str = "", teacher: str = "") -> list[tuple[str, Slot]]:
        """(role, slot) of the streamed lessons and meetings a class or a teacher attends each
        week; role is how they join: classroom, teacher or member. In-person (走教) lessons
        have no room."""
        c = self.consortium
        out: list[tuple[str, Slot]] = []
        for s in self.plan.lessons:
            course = c.courses[s.item]
            if course.local:
                continue
            if klass and any(k == klass for k, _ in s.class_periods):
                out.append(("classroom", s))
            elif teacher and course.teacher == teacher:
                out.append(("teacher", s))
        if teacher:
            out += [("member", s) for s in self.plan.meetings
                    if teacher in c.groups[s.item].members]
        return out

    def occurrence(self, slot: Slot, day: dt.date) -> Occurrence:
        c = self.consortium
        start = dt.datetime.combine(day, dt.time(slot.start // 60, slot.start % 60), TZ)
        end = dt.datetime.combine(day, dt.time(slot.end // 60, slot.end % 60), TZ)
        room = room_name(slot.item, day, slot.start)
        if slot.item in c.groups:
            g = c.groups[slot.item]
            host = g.host(day.isocalendar().week, c)  # in turn week by week (no term start yet)
            campuses = sorted({c.teachers[m].campus for m in g.members})
            return Occurrence("meeting", g.id, f"{g.subject}教研活动", room, start, end, campuses,
                              host, "", g.subject, "")
        course = c.courses[slot.item]
        teacher = c.teachers[course.teacher]
        campuses = sorted({c.classes[k].campus for k in course.classes})
        title = f"{grade_name(course.grade)}{course.subject}·同步课堂（{c.name}）"
        return Occurrence(
            "lesson", course.id, title, room,
            start, end, campuses, teacher.campus, teacher.name, course.subject, str(course.grade),
        )

    def coming(
        self, when: dt.datetime, *, klass: str = "", teacher: str = "", days: int = 8
    ) -> list[tuple[str, Occurrence]]:
        """The (role, occurrence) of a class or a teacher from `when`'s date on, for `days`
        days, in order (ended ones of today included)."""
        when = when.astimezone(TZ)
        weekly = self.weekly(klass=klass, teacher=teacher)
        found: list[tuple[str, Occurrence]] = []
        for offset in range(days):
            day = when.date() + dt.timedelta(days=offset)
            found += [(role, self.occurrence(s, day)) for role, s in weekly
                      if s.day == day.isoweekday()]
        return sorted(found, key=lambda ro: ro[1].start)

    def now_and_next(
        self, when: dt.datetime, *, klass: str = "", teacher: str = ""
    ) -> tuple[tuple[str, Occurrence] | None, tuple[str, Occurrence] | None]:
        """The (role, occurrence) on at `when` (from JOIN_EARLY before its start to its end)
        and the next one after it, within a week."""
        when = when.astimezone(TZ)
        found = self.coming(when, klass=klass, teacher=teacher)
        now = next((ro for ro in found if ro[1].start - JOIN_EARLY <= when < ro[1].end), None)
        later = next((ro for ro in found if ro[1].start - JOIN_EARLY > when), None)
        return now, later

    def lesson(self, room: str) -> tuple[Occurrence, str] | None:
        """The streamed lesson whose room this is, on any date the plan repeats it, with its
        teacher's id; None for anything else (a meeting, an in-person lesson, no such slot)."""
        parsed = parse_room(room)
        if parsed is None:
            return None
        item, day, start = parsed
        c = self.consortium
        course = c.courses.get(item)
        if course is None or course.local:
            return None
        for s in self.plan.lessons:
            if s.item == item and s.day == day.isoweekday() and s.start == start:
                return self.occurrence(s, day), course.teacher
        return None

    def week_occurrences(self, when: dt.datetime) -> list[Occurrence]:
        """Every streamed lesson and meeting of `when`'s week (Monday to Friday)."""
        when = when.astimezone(TZ)
        monday = when.date() - dt.timedelta(days=when.isoweekday() - 1)
        c = self.consortium
        out = []
        for s in [*self.plan.lessons, *self.plan.meetings]:
            if s.item in c.courses and c.courses[s.item].local:
                continue
            out.append(self.occurrence(s, monday + dt.timedelta(days=s.day - 1)))
        return sorted(out, key=lambda o: o.start)


def _minutes(text: str) -> int:
    h, m = text.split(":")
    return int(h) * 60 + int(m)


class TimetableService:
    """Every consortium's timetable on this server, with the clock (`now`: real in
    production, injected in tests) and the worker thread CP-SAT runs in."""

    def __init__(
        self,
        sources: list[Path],
        store: SqliteTimetableStore,
        *,
        now: Callable[[], dt.datetime] | None = None,
        solve_seconds: float = DEFAULT_SOLVE_SECONDS,
        on_plan: Callable[[Timetable], None] | None = None,
    ) -> None:
        self.now = now or (lambda: dt.datetime.now(TZ))
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cp-sat")
        self.timetables: dict[str, Timetable] = {}
        for path in sources:
            text = path.read_text(encoding="utf-8")
            c = load_file(path)  # a broken sample file stops the start, with its line
            saved = store.load(c.id)
            tt = self.timetables[c.id] = Timetable(
                text, store, self._executor, saved=saved, solve_seconds=solve_seconds,
                on_plan=on_plan,
            )
            if saved is None:
                tt.save()  # the first plan survives a restart like any later one

    def get(self, consortium: str) -> Timetable | None:
        return self.timetables.get(consortium)

    def lesson(self, room: str) -> tuple[Timetable, Occurrence, str] | None:
        """(timetable, occurrence, teacher id) of a streamed lesson's room, on any date."""
        for tt in self.timetables.values():
            found = tt.lesson(room)
            if found is not None:
                return tt, *found
        return None

    def title_of(self, room: str) -> str | None:
        """A live room's title when it is one of this week's timetabled lessons or meetings."""
        for tt in self.timetables.values():
            for o in tt.week_occurrences(self.now()):
                if o.room == room:
                    return o.title
        return None

    async def close(self) -> None:
        for tt in self.timetables.values():
            await tt.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
