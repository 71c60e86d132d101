"""Where a consortium's timetable lives between restarts: its source (TOML), the locks staff
added and the current plan. JSON files for now (one per consortium, replaced atomically); the
interface is small so that scheduler/store.py (SQLite) can take its place."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from scheduler.model import Lock
from scheduler.slots import Slot
from scheduler.solve import Plan, Unplaced


@dataclass
class Saved:
    source: str  # the consortium as TOML, as staff last saved it
    locks: list[Lock] = field(default_factory=list)  # added by staff (the source has its own)
    plan: Plan | None = None


class TimetableStore(Protocol):
    def load(self, consortium: str) -> Saved | None: ...

    def save(self, consortium: str, saved: Saved) -> None: ...


class JsonTimetableStore:
    """`<dir>/<consortium>.json`, written to a temporary file and renamed over the old one, so a
    crash leaves either the old or the new file, never half of one."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory

    def _path(self, consortium: str) -> Path:
        if not consortium or "/" in consortium or consortium.startswith("."):
            raise ValueError(f"bad consortium id {consortium!r}")
        return self.dir / f"{consortium}.json"

    def load(self, consortium: str) -> Saved | None:
        path = self._path(consortium)
        if not path.exists():
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
        plan = data.get("plan")
        return Saved(
            source=data["source"],
            locks=[Lock(lk["item"], lk["day"], lk["at"]) for lk in data.get("locks", [])],
            plan=plan_from_dict(plan) if plan else None,
        )

    def save(self, consortium: str, saved: Saved) -> None:
        path = self._path(consortium)
        self.dir.mkdir(parents=True, exist_ok=True)
        data = {
            "source": saved.source,
            "locks": [asdict(lk) for lk in saved.locks],
            "plan": plan_to_dict(saved.plan) if saved.plan else None,
        }
        fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=f".{consortium}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, ensure_ascii=False, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    return asdict(plan)


def _slot(d: dict[str, Any]) -> Slot:
    return Slot(**{**d, "class_periods": tuple(tuple(cp) for cp in d["class_periods"])})


def plan_from_dict(d: dict[str, Any]) -> Plan:
    return Plan(
        consortium=d["consortium"],
        lessons=[_slot(s) for s in d["lessons"]],
        meetings=[_slot(s) for s in d["meetings"]],
        unplaced=[Unplaced(**u) for u in d["unplaced"]],
        proven_optimal=bool(d["proven_optimal"]),
        seconds=float(d["seconds"]),
        moved=list(d.get("moved", [])),
        status=str(d.get("status", "")),
    )
