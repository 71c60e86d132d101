"""Decks attached to timetabled lessons ahead of time (课前准备课件): which deck a lesson's room
starts on. Kept in `DATA_DIR/lesson-decks.sqlite`, next to the timetable's store, one row per
lesson room; every change is one statement in one transaction, so a failed write leaves the
attachment as it was."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Attachment:
    room: str  # the lesson's room, `<course>-<yyyymmdd>-<hhmm>`
    consortium: str
    deck: str  # the deck's id (sha256 of its file)
    by: str  # who attached it (token id), for support staff
    at: float  # when (epoch seconds)


SCHEMA = """
CREATE TABLE IF NOT EXISTS lesson_decks (
    room TEXT PRIMARY KEY,
    consortium TEXT NOT NULL,
    deck TEXT NOT NULL,
    attached_by TEXT NOT NULL,
    attached_at REAL NOT NULL
);
"""


class LessonDecks:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: each statement below is its own transaction
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)

    def attach(self, room: str, consortium: str, deck: str, by: str) -> Attachment:
        """Attach (or replace) the deck of a lesson."""
        attachment = Attachment(room, consortium, deck, by, time.time())
        self.db.execute(
            "INSERT INTO lesson_decks VALUES (?, ?, ?, ?, ?) ON CONFLICT(room) DO UPDATE SET "
            "consortium=excluded.consortium, deck=excluded.deck, "
            "attached_by=excluded.attached_by, attached_at=excluded.attached_at",
            (room, consortium, deck, by, attachment.at),
        )
        return attachment

    def detach(self, room: str) -> bool:
        """False when the lesson had no deck."""
        return self.db.execute("DELETE FROM lesson_decks WHERE room=?", (room,)).rowcount > 0

    def get(self, room: str) -> Attachment | None:
        row = self.db.execute(
            "SELECT room, consortium, deck, attached_by, attached_at FROM lesson_decks "
            "WHERE room=?",
            (room,),
        ).fetchone()
        return Attachment(*row) if row else None

    def deck_of(self, room: str) -> str | None:
        found = self.get(room)
        return found.deck if found else None

    def close(self) -> None:
        self.db.close()
