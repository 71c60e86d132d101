"""Where a consortium's timetable lives between restarts: its source (TOML), the locks staff
added and the current plan, in the scheduler's SQLite store (`DATA_DIR/timetable.sqlite`), all
three written in one transaction: a crash leaves the old timetable or the new one."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from scheduler.load import load_text
from scheduler.model import Lock
from scheduler.solve import Plan
from scheduler.store import Store


@dataclass
class Saved:
    source: str  # the consortium as TOML, as staff last saved it
    locks: list[Lock] = field(default_factory=list)  # added by staff (the source has its own)
    plan: Plan | None = None


class SqliteTimetableStore:
    def __init__(self, path: Path) -> None:
        self.store = Store(path)

    def load(self, consortium: str) -> Saved | None:
        try:
            source, fmt = self.store.source(consortium)
        except KeyError:
            return None
        own = {(lk.item, lk.day, lk.at) for lk in load_text(source, fmt).locks}
        staff = [lk for lk in self.store.locks(consortium) if (lk.item, lk.day, lk.at) not in own]
        return Saved(source=source, locks=staff, plan=self.store.plan(consortium))

    def save(self, consortium: str, saved: Saved) -> None:
        self.store.put_timetable(saved.source, "toml", saved.locks, saved.plan)

    def close(self) -> None:
        self.store.close()
