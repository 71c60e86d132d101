"""Research meetings (集体教研): the meeting page and its shared minutes (纪要).

Minutes are one text per meeting, kept in the records database beside the meeting's row and
copied into its recording's directory (minutes.md) when a recording of the room ends. Several
people may edit: each save names the version it started from; a save based on an older version
is refused with the current text (HTTP 409), so nobody overwrites what they have not seen.

Who may do what: the meeting's members and its host (a teacher token for the room) read and
edit; staff (observer tokens) read.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .protocol import ProtocolError, error
from .records import RecordsStore
from .tokens import Identity, TokenError, TokenIssuer

if TYPE_CHECKING:
    from .room import Room

MAX_MEETING_MEMBERS = 16  # cameras a member's page and uplink can carry
MAX_MINUTES_CHARS = 20_000
EDIT_ROLES = frozenset({"teacher", "member"})
WEB_DIR = Path(__file__).resolve().parent.parent / "web"

SCHEMA = """
CREATE TABLE IF NOT EXISTS minutes (
    room TEXT NOT NULL,
    lesson_id INTEGER NOT NULL DEFAULT 0,    -- the meeting's row in lessons (0: none yet)
    text TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (room, lesson_id)
);
"""


def check_capacity(room: Room, identity: Identity) -> None:
    """A meeting holds at most MAX_MEETING_MEMBERS members (a reconnecting one always fits)."""
    if identity.role != "member":
        return
    others = sum(
        p.identity.role == "member" and p.id != identity.id for p in room.participants.values()
    )
    if others >= MAX_MEETING_MEMBERS:
        raise ProtocolError(
            "room_full",
            f"教研活动人数已满（最多{MAX_MEETING_MEMBERS}人）。",
            f"{others} members already in {room.id}",
        )


class MinutesConflict(Exception):
    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("stale version")
        self.current = current


class Minutes:
    def __init__(self, store: RecordsStore) -> None:
        self.db = store.db
        self.db.executescript(SCHEMA)

    def _lesson(self, room: str) -> int:
        """The room's current (or last) meeting row: minutes belong to one meeting."""
        row = self.db.execute(
            "SELECT id FROM lessons WHERE room=? AND started_at IS NOT NULL"
            " ORDER BY started_at DESC LIMIT 1",
            (room,),
        ).fetchone()
        return int(row["id"]) if row else 0

    def get(self, room: str) -> dict[str, Any]:
        lesson_id = self._lesson(room)
        row = self.db.execute(
            "SELECT text, version, updated_at, updated_by FROM minutes"
            " WHERE room=? AND lesson_id=?",
            (room, lesson_id),
        ).fetchone()
        if row is None:
            return {"room": room, "text": "", "version": 0, "updated_at": None, "updated_by": ""}
        return {"room": room, **dict(row)}

    def save(self, room: str, text: str, base_version: int, author: str) -> dict[str, Any]:
        current = self.get(room)
        if base_version != current["version"]:
            raise MinutesConflict(current)
        lesson_id = self._lesson(room)
        self.db.execute(
            "INSERT INTO minutes (room, lesson_id, text, version, updated_at, updated_by)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (room, lesson_id) DO UPDATE SET text=excluded.text,"
            " version=excluded.version, updated_at=excluded.updated_at,"
            " updated_by=excluded.updated_by",
            (room, lesson_id, text, base_version + 1, time.time(), author),
        )
        return self.get(room)

    def keep_with(self, meta: dict[str, Any], directory: Path) -> None:
        """A recording of the room ended: keep the minutes beside it."""
        minutes = self.get(str(meta["room"]))
        if minutes["text"]:
            (directory / "minutes.md").write_text(minutes["text"], encoding="utf-8")


def setup(app: web.Application, store: RecordsStore, issuer: TokenIssuer) -> Minutes:
    minutes = Minutes(store)

    def identity(request: web.Request) -> Identity:
        return issuer.verify_request(
            request.query.get("token"), request.headers.get("Authorization")
        )

    def refuse(status: int, code: str, message: str, detail: str) -> web.Response:
        return web.json_response(error(code, message, detail), status=status)

    async def read(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        try:
            who = identity(request)
        except TokenError as exc:
            return refuse(401, exc.code, exc.message, exc.detail)
        if who.room not in (room, "*"):
            return refuse(403, "not_allowed", "无权查看该教研活动的纪要。", "other room")
        return web.json_response(minutes.get(room))

    async def write(request: web.Request) -> web.Response:
        room = request.match_info["room"]
        try:
            who = identity(request)
        except TokenError as exc:
            return refuse(401, exc.code, exc.message, exc.detail)
        if who.room != room or who.role not in EDIT_ROLES:
            return refuse(403, "not_allowed", "当前身份不能编辑纪要。", "members and host only")
        try:
            body = await request.json()
            text, base = body["text"], body["version"]
            if not isinstance(text, str) or not isinstance(base, int) or isinstance(base, bool):
                raise TypeError("text must be a string and version an integer")
        except (ValueError, KeyError, TypeError) as exc:
            return refuse(400, "bad_message", "纪要格式错误。", f"bad body: {exc}")
        if len(text) > MAX_MINUTES_CHARS:
            return refuse(400, "too_large", "纪要过长（不超过2万字）。", f"{len(text)} chars")
        try:
            saved = minutes.save(room, text, base, who.name)
        except MinutesConflict as exc:
            return web.json_response(
                {
                    **error("conflict", "纪要已被他人修改，已为您载入最新内容。", "stale version"),
                    "current": exc.current,
                },
                status=409,
            )
        return web.json_response(saved)

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "meeting.html", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/api/meetings/{room}/minutes", read)
    app.router.add_put("/api/meetings/{room}/minutes", write)
    app.router.add_get("/meeting", page)
    return minutes
