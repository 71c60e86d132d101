"""The consortium's records in SQLite: every lesson and meeting, scheduled and held, who joined
from which campus and for how long, with what link quality; and review comments on recordings.

The timetable (scheduler/, issue 5) fills `lessons` with scheduled rows (`schedule()`) and the
campuses each lesson expects (`lesson_campuses`); when a room goes live, the scheduled row of that
room whose time covers now is marked held, else an unscheduled row is added.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .room import Participant, Room

SCHEMA = """
CREATE TABLE IF NOT EXISTS lessons (
    id INTEGER PRIMARY KEY,
    room TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'lesson',      -- lesson | meeting (教研)
    title TEXT NOT NULL DEFAULT '',
    consortium TEXT NOT NULL DEFAULT '',
    host_campus TEXT NOT NULL DEFAULT '',
    subject TEXT NOT NULL DEFAULT '',
    grade TEXT NOT NULL DEFAULT '',
    teacher TEXT NOT NULL DEFAULT '',
    scheduled_start REAL,                      -- unix seconds; NULL: not on the timetable
    scheduled_end REAL,
    started_at REAL,                           -- NULL: not held (yet)
    ended_at REAL,
    recording_id TEXT
);
CREATE INDEX IF NOT EXISTS lessons_room ON lessons (room, scheduled_start);
CREATE TABLE IF NOT EXISTS lesson_campuses (  -- the campuses a scheduled lesson expects
    lesson_id INTEGER NOT NULL REFERENCES lessons(id),
    campus TEXT NOT NULL,
    PRIMARY KEY (lesson_id, campus)
);
CREATE TABLE IF NOT EXISTS attendance (
    id INTEGER PRIMARY KEY,
    lesson_id INTEGER NOT NULL REFERENCES lessons(id),
    participant TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    campus TEXT NOT NULL DEFAULT '',
    joined_at REAL NOT NULL,
    left_at REAL,
    good INTEGER NOT NULL DEFAULT 0,           -- link health samples (good / weak / poor)
    weak INTEGER NOT NULL DEFAULT 0,
    poor INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS attendance_lesson ON attendance (lesson_id);
CREATE TABLE IF NOT EXISTS review_comments (
    id INTEGER PRIMARY KEY,
    recording_id TEXT NOT NULL,
    t REAL NOT NULL,                           -- seconds into the recording
    author TEXT NOT NULL,
    campus TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS comments_recording ON review_comments (recording_id, t);
"""

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., None])


def _never_raises(method: F) -> F:
    """A failed write to the records must not take a lesson down: log it and go on."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            method(*args, **kwargs)
        except sqlite3.Error:
            log.exception("records: %s failed", method.__name__)

    return wrapper  # type: ignore[return-value]


# A live room matches a scheduled lesson that starts up to this early or ends this late.
MATCH_EARLY_S = 30 * 60
ATTENDING_ROLES = ("teacher", "classroom", "member")  # observers inspect silently
HEALTH_SAMPLE_S = 10.0


class RecordsStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: each write lasts
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # Writes run on the event loop: no fsync per commit (WAL still never corrupts; a power
        # cut may lose the last second of records, not the file).
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    # -- the timetable's side -----------------------------------------------------------------

    def schedule(
        self,
        room: str,
        start: float,
        end: float,
        campuses: list[str],
        *,
        kind: str = "lesson",
        title: str = "",
        consortium: str = "",
        host_campus: str = "",
        subject: str = "",
        grade: str = "",
        teacher: str = "",
    ) -> int:
        """A lesson on the timetable, expecting `campuses` (the host's included or not)."""
        cur = self.db.execute(
            "INSERT INTO lessons (room, kind, title, consortium, host_campus, subject, grade,"
            " teacher, scheduled_start, scheduled_end) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (room, kind, title, consortium, host_campus, subject, grade, teacher, start, end),
        )
        lesson_id = int(cur.lastrowid or 0)
        self.db.executemany(
            "INSERT OR IGNORE INTO lesson_campuses VALUES (?, ?)",
            [(lesson_id, c) for c in {*campuses, host_campus} if c],
        )
        return lesson_id

    def replace_schedule(
        self, consortium: str, after: float, lessons: list[dict[str, Any]]
    ) -> None:
        """The timetable changed (or a new week began): the consortium's scheduled lessons from
        `after` on that nobody has held yet are replaced by `lessons` (schedule()'s arguments
        as a dict), in one transaction."""
        self.db.execute("BEGIN")
        try:
            stale = "SELECT id FROM lessons WHERE consortium=? AND started_at IS NULL" \
                " AND scheduled_start >= ?"
            self.db.execute(
                f"DELETE FROM lesson_campuses WHERE lesson_id IN ({stale})", (consortium, after)
            )
            self.db.execute(f"DELETE FROM lessons WHERE id IN ({stale})", (consortium, after))
            for lesson in lessons:
                held = self.db.execute(  # already opened early: keep that row
                    "SELECT 1 FROM lessons WHERE room=? AND scheduled_start=?",
                    (lesson["room"], lesson["start"]),
                ).fetchone()
                if lesson["start"] >= after and held is None:
                    self.schedule(**{**lesson, "consortium": consortium})
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- what happens live --------------------------------------------------------------------

    def open_lesson(self, room: str, now: float, **facts: str) -> int:
        """The lesson row a room going live belongs to: the room's open one, a scheduled one
        around now (marked held), or a new unscheduled one."""
        row = self.db.execute(
            "SELECT id FROM lessons WHERE room=? AND started_at IS NOT NULL AND ended_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (room,),
        ).fetchone()
        if row is not None:
            return int(row["id"])
        row = self.db.execute(
            "SELECT id FROM lessons WHERE room=? AND started_at IS NULL"
            " AND scheduled_start - ? <= ? AND scheduled_end >= ?"
            " ORDER BY scheduled_start LIMIT 1",
            (room, MATCH_EARLY_S, now, now),
        ).fetchone()
        if row is not None:
            self.db.execute("UPDATE lessons SET started_at=? WHERE id=?", (now, row["id"]))
            return int(row["id"])
        cur = self.db.execute(
            "INSERT INTO lessons (room, kind, title, consortium, host_campus, subject, grade,"
            " teacher, started_at) VALUES (?,?,?,?,?,?,?,?,?)",
            (
                room,
                facts.get("kind", "lesson"),
                facts.get("title", ""),
                facts.get("consortium", ""),
                facts.get("host_campus", ""),
                facts.get("subject", ""),
                facts.get("grade", ""),
                facts.get("teacher", ""),
                now,
            ),
        )
        return int(cur.lastrowid or 0)

    def fill_consortium(self, lesson_id: int, consortium: str) -> None:
        """An unscheduled lesson learns its consortium from the tokens of those who join."""
        self.db.execute(
            "UPDATE lessons SET consortium=? WHERE id=? AND consortium=''", (consortium, lesson_id)
        )

    def consortium_of(self, room: str) -> str:
        """The consortium of a room's lesson rows (the timetable schedules them), or ""."""
        row = self.db.execute(
            "SELECT consortium FROM lessons WHERE room=? AND consortium != ''"
            " ORDER BY id DESC LIMIT 1",
            (room,),
        ).fetchone()
        return str(row["consortium"]) if row else ""

    def close_lesson(self, lesson_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE attendance SET left_at=? WHERE lesson_id=? AND left_at IS NULL",
            (now, lesson_id),
        )
        self.db.execute("UPDATE lessons SET ended_at=? WHERE id=?", (now, lesson_id))

    def fill_host(self, lesson_id: int, campus: str, teacher: str) -> None:
        self.db.execute(
            "UPDATE lessons SET host_campus=CASE WHEN host_campus='' THEN ? ELSE host_campus END,"
            " teacher=CASE WHEN teacher='' THEN ? ELSE teacher END WHERE id=?",
            (campus, teacher, lesson_id),
        )

    def mark_meeting(self, lesson_id: int) -> None:
        self.db.execute("UPDATE lessons SET kind='meeting' WHERE id=?", (lesson_id,))

    def joined(
        self, lesson_id: int, participant: str, name: str, role: str, campus: str, now: float
    ) -> int:
        cur = self.db.execute(
            "INSERT INTO attendance (lesson_id, participant, name, role, campus, joined_at)"
            " VALUES (?,?,?,?,?,?)",
            (lesson_id, participant, name, role, campus, now),
        )
        return int(cur.lastrowid or 0)

    def left(self, attendance_id: int, now: float) -> None:
        self.db.execute(
            "UPDATE attendance SET left_at=? WHERE id=? AND left_at IS NULL", (now, attendance_id)
        )

    def health(self, samples: list[tuple[int, str]]) -> None:
        """One link-health sample (good | weak | poor) per attendance row, in one transaction."""
        self.db.execute("BEGIN")
        try:
            for attendance_id, quality in samples:
                if quality in ("good", "weak", "poor"):
                    self.db.execute(
                        f"UPDATE attendance SET {quality}={quality}+1 WHERE id=?", (attendance_id,)
                    )
        finally:
            self.db.execute("COMMIT")

    def set_recording(self, room: str, recording_id: str) -> None:
        self.db.execute(
            "UPDATE lessons SET recording_id=? WHERE id=(SELECT id FROM lessons WHERE room=?"
            " AND started_at IS NOT NULL ORDER BY started_at DESC LIMIT 1)",
            (recording_id, room),
        )

    # -- review comments ----------------------------------------------------------------------

    def add_comment(
        self, recording_id: str, t: float, author: str, campus: str, role: str, text: str
    ) -> dict[str, Any]:
        now = time.time()
        cur = self.db.execute(
            "INSERT INTO review_comments (recording_id, t, author, campus, role, text, created_at)"
            " VALUES (?,?,?,?,?,?,?)",
            (recording_id, t, author, campus, role, text, now),
        )
        return {
            "id": cur.lastrowid,
            "t": t,
            "author": author,
            "campus": campus,
            "role": role,
            "text": text,
            "created_at": now,
        }

    def comments(self, recording_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT id, t, author, campus, role, text, created_at FROM review_comments"
            " WHERE recording_id=? ORDER BY t, id",
            (recording_id,),
        ).fetchall()
        return [dict(r) for r in rows]


class RecordsKeeper:
    """A RoomObserver that writes lessons and attendance into a RecordsStore as rooms live."""

    def __init__(
        self,
        store: RecordsStore,
        lessons: dict[str, dict[str, str]] | None = None,
        clock: Any = time.time,
    ) -> None:
        self.store = store
        self._facts = lessons or {}  # room -> title, consortium, subject, grade ...
        self._clock = clock
        self._lesson: dict[str, int] = {}  # room id -> open lesson row
        self._attendance: dict[int, tuple[Participant, int]] = {}  # id(participant) -> row
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._sample_health())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        now = self._clock()
        for lesson_id in self._lesson.values():
            self.store.close_lesson(lesson_id, now)
        self._lesson.clear()

    @_never_raises
    def participant_joined(self, room: Room, participant: Participant) -> None:
        who = participant.identity
        if who.role not in ATTENDING_ROLES:
            return
        now = self._clock()
        lesson_id = self._lesson.get(room.id)
        if lesson_id is None:
            facts = {"title": room.title, **self._facts.get(room.id, {})}
            if who.role == "member":
                facts.setdefault("kind", "meeting")
            lesson_id = self._lesson[room.id] = self.store.open_lesson(room.id, now, **facts)
        if who.consortium:
            self.store.fill_consortium(lesson_id, who.consortium)
        if who.role == "teacher":
            self.store.fill_host(lesson_id, who.campus or "", who.name)
        elif who.role == "member":  # members meet (教研); a host may have opened the room
            self.store.mark_meeting(lesson_id)
        row = self.store.joined(lesson_id, who.id, who.name, who.role, who.campus or "", now)
        self._attendance[id(participant)] = (participant, row)

    @_never_raises
    def participant_left(self, room: Room, participant: Participant) -> None:
        entry = self._attendance.pop(id(participant), None)
        if entry is not None:
            self.store.left(entry[1], self._clock())

    def media_changed(self, room: Room) -> None:
        pass

    @_never_raises
    def room_closed(self, room: Room) -> None:
        lesson_id = self._lesson.pop(room.id, None)
        if lesson_id is not None:
            self.store.close_lesson(lesson_id, self._clock())

    @_never_raises
    def recording_changed(self, meta: dict[str, Any]) -> None:
        self.store.set_recording(str(meta["room"]), str(meta["id"]))

    async def _sample_health(self) -> None:
        while True:
            await asyncio.sleep(HEALTH_SAMPLE_S)
            samples = [
                (row, str(participant.session.last_health.get("quality", "")))
                for participant, row in self._attendance.values()
                if participant.session.last_health
            ]
            if samples:
                try:
                    self.store.health(samples)
                except sqlite3.Error:
                    log.exception("records: link samples not written")
