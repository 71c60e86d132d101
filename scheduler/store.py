"""The timetable's persistence in SQLite (stdlib sqlite3): consortia as their validated source
text, the latest plan of each, and locks. Every write is one transaction; a write that fails
validation raises and changes nothing.

    store = Store(path)                       # creates the file and tables if needed
    store.put_consortium(text, "toml") -> Consortium
        validates with load.py first (ModelError naming the entry and line); adds, or replaces
        the consortium with the same id. Locks: the source's [[locks]] plus the stored locks
        of items that still exist (a source lock wins on the same item and day); an edit under
        which the locks can no longer hold is refused (ModelError at "locks").
    store.consortium(id) -> Consortium        # with its stored locks; KeyError if unknown
    store.consortia() -> list[Consortium]     # by id
    store.source(id) -> (text, fmt)           # the source text as last accepted
    store.revision(id) -> int                 # 1, 2, ...: bumped by every accepted edit
    store.delete_consortium(id)               # with its plan and locks
    store.put_plan(id, plan)                  # the consortium's current plan (replaces)
    store.put_timetable(text, fmt, locks, plan)  # source, staff's locks and plan: one transaction
    store.plan(id) -> Plan | None
    store.plan_is_stale(id) -> bool           # the consortium changed after the plan was made
    store.set_lock(id, lock) -> list[Lock]    # replaces the item's lock on that day (a meeting
                                              # has one); refused if the locks cannot all hold
    store.put_locks(id, locks) -> list[Lock]  # replaces them all (an imported timetable)
    store.remove_lock(id, item, day=None) -> int   # locks removed
    store.locks(id) -> list[Lock]

`plan_to_dict` / `plan_from_dict` give a plan as plain JSON-ready data (also what is stored).
The connection may be used from several threads (a solver in an executor): one lock guards it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .load import ModelError, load_text
from .model import Consortium, Lock
from .slots import Slot
from .solve import LockError, Plan, Unplaced, check_locks

SCHEMA = """
CREATE TABLE IF NOT EXISTS consortia (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    fmt TEXT NOT NULL,                 -- toml | json
    source TEXT NOT NULL,              -- as accepted, comments and all
    revision INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    consortium TEXT NOT NULL REFERENCES consortia(id),
    item TEXT NOT NULL,                -- course or research group id
    day INTEGER NOT NULL,
    at INTEGER NOT NULL,               -- period index (course) or start minute (meeting)
    PRIMARY KEY (consortium, item, day)
);
CREATE TABLE IF NOT EXISTS plans (
    consortium TEXT PRIMARY KEY REFERENCES consortia(id),
    revision INTEGER NOT NULL,         -- the consortium's revision it was made for
    data TEXT NOT NULL,                -- plan_to_dict as JSON
    created_at REAL NOT NULL
);
"""


class Store:
    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Transactions are explicit (BEGIN IMMEDIATE in _tx), hence isolation_level=None.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self._mutex = threading.RLock()

    def close(self) -> None:
        with self._mutex:
            self.db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    # -- consortia ----------------------------------------------------------------------------

    def put_consortium(self, source: str, fmt: str = "toml") -> Consortium:
        c = load_text(source, fmt)
        with self._tx() as db:
            self._put_consortium(db, c, source, fmt, self._stored_locks(c.id))
        return c

    def put_timetable(
        self, source: str, fmt: str, locks: list[Lock], plan: Plan | None
    ) -> Consortium:
        """A server's whole saved timetable in one transaction: the source, the locks staff
        added (the source's own come with it) and the plan. Refused whole, like any edit."""
        c = load_text(source, fmt)
        with self._tx() as db:
            self._put_consortium(db, c, source, fmt, locks)
            if plan is not None:
                self._put_plan(db, c.id, plan)
        return c

    def _put_consortium(
        self, db: sqlite3.Connection, c: Consortium, source: str, fmt: str, kept: list[Lock]
    ) -> None:
        row = db.execute("SELECT revision FROM consortia WHERE id = ?", (c.id,)).fetchone()
        given = {_key(c, lk) for lk in c.locks}
        c.locks += [
            lk for lk in kept
            if (lk.item in c.courses or lk.item in c.groups) and _key(c, lk) not in given
        ]
        _must_hold(c)
        db.execute(
            "INSERT INTO consortia (id, name, fmt, source, revision, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET name = excluded.name,"
            " fmt = excluded.fmt, source = excluded.source, revision = excluded.revision,"
            " updated_at = excluded.updated_at",
            (c.id, c.name, fmt, source, (row[0] + 1) if row else 1, time.time()),
        )
        self._write_locks(c.id, c.locks)

    def consortium(self, consortium_id: str) -> Consortium:
        with self._mutex:
            text, fmt = self.source(consortium_id)
            c = load_text(text, fmt)
            c.locks = self._stored_locks(consortium_id)
            return c

    def consortia(self) -> list[Consortium]:
        with self._mutex:
            ids = [r[0] for r in self.db.execute("SELECT id FROM consortia ORDER BY id")]
            return [self.consortium(i) for i in ids]

    def source(self, consortium_id: str) -> tuple[str, str]:
        with self._mutex:
            row = self.db.execute(
                "SELECT source, fmt FROM consortia WHERE id = ?", (consortium_id,)
            ).fetchone()
        if row is None:
            raise KeyError(consortium_id)
        return row[0], row[1]

    def revision(self, consortium_id: str) -> int:
        with self._mutex:
            row = self.db.execute(
                "SELECT revision FROM consortia WHERE id = ?", (consortium_id,)
            ).fetchone()
        if row is None:
            raise KeyError(consortium_id)
        return int(row[0])

    def delete_consortium(self, consortium_id: str) -> None:
        with self._tx() as db:
            for table, key in (("locks", "consortium"), ("plans", "consortium"),
                               ("consortia", "id")):
                db.execute(f"DELETE FROM {table} WHERE {key} = ?", (consortium_id,))

    # -- plans --------------------------------------------------------------------------------

    def put_plan(self, consortium_id: str, plan: Plan) -> None:
        with self._tx() as db:
            self._put_plan(db, consortium_id, plan)

    def _put_plan(self, db: sqlite3.Connection, consortium_id: str, plan: Plan) -> None:
        revision = self.revision(consortium_id)
        db.execute(
            "INSERT OR REPLACE INTO plans (consortium, revision, data, created_at)"
            " VALUES (?, ?, ?, ?)",
            (consortium_id, revision, json.dumps(plan_to_dict(plan), ensure_ascii=False),
             time.time()),
        )

    def plan(self, consortium_id: str) -> Plan | None:
        with self._mutex:
            row = self.db.execute(
                "SELECT data FROM plans WHERE consortium = ?", (consortium_id,)
            ).fetchone()
        return None if row is None else plan_from_dict(json.loads(row[0]))

    def plan_is_stale(self, consortium_id: str) -> bool:
        with self._mutex:
            row = self.db.execute(
                "SELECT p.revision, c.revision FROM plans p JOIN consortia c"
                " ON c.id = p.consortium WHERE p.consortium = ?", (consortium_id,)
            ).fetchone()
        return row is None or row[0] != row[1]

    # -- locks --------------------------------------------------------------------------------

    def locks(self, consortium_id: str) -> list[Lock]:
        with self._mutex:
            return self._stored_locks(consortium_id)

    def set_lock(self, consortium_id: str, lock: Lock) -> list[Lock]:
        with self._tx():
            c = self.consortium(consortium_id)
            if lock.item not in c.courses and lock.item not in c.groups:
                raise ModelError("locks.item", f"没有编号为 {lock.item!r} 的课程或教研组")
            if lock.day not in (1, 2, 3, 4, 5):
                raise ModelError("locks.day", "星期几应为 1 到 5")
            c.locks = [lk for lk in c.locks if _key(c, lk) != _key(c, lock)] + [lock]
            _must_hold(c)
            self._write_locks(consortium_id, c.locks)
            return list(c.locks)

    def put_locks(self, consortium_id: str, locks: list[Lock]) -> list[Lock]:
        """All the consortium's locks at once (an imported timetable), checked together."""
        with self._tx():
            c = self.consortium(consortium_id)
            for lk in locks:
                if lk.item not in c.courses and lk.item not in c.groups:
                    raise ModelError("locks.item", f"没有编号为 {lk.item!r} 的课程或教研组")
            c.locks = list({_key(c, lk): lk for lk in locks}.values())
            _must_hold(c)
            self._write_locks(consortium_id, c.locks)
            return list(c.locks)

    def remove_lock(self, consortium_id: str, item: str, day: int | None = None) -> int:
        with self._tx() as db:
            if day is None:
                cur = db.execute("DELETE FROM locks WHERE consortium = ? AND item = ?",
                                 (consortium_id, item))
            else:
                cur = db.execute("DELETE FROM locks WHERE consortium = ? AND item = ? AND day = ?",
                                 (consortium_id, item, day))
            return cur.rowcount

    def _stored_locks(self, consortium_id: str) -> list[Lock]:
        rows = self.db.execute(
            "SELECT item, day, at FROM locks WHERE consortium = ? ORDER BY item, day",
            (consortium_id,),
        )
        return [Lock(item, day, at) for item, day, at in rows]

    def _write_locks(self, consortium_id: str, locks: list[Lock]) -> None:
        self.db.execute("DELETE FROM locks WHERE consortium = ?", (consortium_id,))
        self.db.executemany(
            "INSERT INTO locks (consortium, item, day, at) VALUES (?, ?, ?, ?)",
            [(consortium_id, lk.item, lk.day, lk.at) for lk in locks],
        )


def _key(c: Consortium, lock: Lock) -> tuple[str, int]:
    """A course has at most one lesson a day; a research group meets once a week."""
    return (lock.item, 0) if lock.item in c.groups else (lock.item, lock.day)


def _must_hold(c: Consortium) -> None:
    try:
        check_locks(c)
    except LockError as exc:
        raise ModelError("locks", f"锁定无法同时成立: {exc}") from exc


def _slot_to_dict(s: Slot) -> dict[str, Any]:
    return {"item": s.item, "day": s.day, "at": s.at, "start": s.start, "end": s.end,
            "campus": s.campus, "class_periods": [list(kp) for kp in s.class_periods],
            "overlap": s.overlap}


def _slot_from_dict(d: dict[str, Any]) -> Slot:
    return Slot(d["item"], d["day"], d["at"], d["start"], d["end"], d["campus"],
                tuple((k, p) for k, p in d["class_periods"]), d["overlap"])


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return {
        "consortium": plan.consortium,
        "lessons": [_slot_to_dict(s) for s in plan.lessons],
        "meetings": [_slot_to_dict(s) for s in plan.meetings],
        "unplaced": [{"item": u.item, "missing": u.missing, "reason": u.reason}
                     for u in plan.unplaced],
        "proven_optimal": plan.proven_optimal,
        "seconds": plan.seconds,
        "moved": list(plan.moved),
        "status": plan.status,
    }


def plan_from_dict(d: dict[str, Any]) -> Plan:
    return Plan(
        d["consortium"],
        lessons=[_slot_from_dict(s) for s in d["lessons"]],
        meetings=[_slot_from_dict(s) for s in d["meetings"]],
        unplaced=[Unplaced(u["item"], u["missing"], u["reason"]) for u in d["unplaced"]],
        proven_optimal=d["proven_optimal"],
        seconds=d["seconds"],
        moved=list(d["moved"]),
        status=d["status"],
    )
