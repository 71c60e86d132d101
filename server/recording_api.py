"""HTTP for recordings: switch recording on and off, the replay library, media, review comments.

Who may do what with recordings (the replay access policy, in one place):
- start/stop recording a room: that room's teacher, or staff (an observer token for the room or
  for every room, "*");
- open the library and watch, per consortium (教联体): teachers, meeting members and staff whose
  token names a consortium see every recording of that consortium; any token for a recording's
  own room sees that recording (the lesson's teacher, its classes, its observers); the platform's
  staff (an observer token for every room, "*", naming no consortium) sees every recording.
  A token naming no consortium sees no other room's recordings, and a recording whose consortium
  is unknown is seen only through its room's tokens and by the platform's staff;
- read and write review comments (听课评课): whoever may watch the recording reads them; of those,
  teachers, members and staff write, never a classroom display.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from aiohttp import web

from media.recorder import DiskSpaceError

from .protocol import error
from .recording import MEDIA_FILE, RECORDING_ID, SLIDE_EVENTS, RecordingService, read_meta
from .records import RecordsStore
from .tokens import Identity, TokenError, TokenIssuer

ALL_ROOMS = "*"
LIBRARY_ROLES = frozenset({"teacher", "member", "observer"})  # see every recording
COMMENT_ROLES = frozenset({"teacher", "member", "observer"})
MAX_COMMENT_CHARS = 2000
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.response = web.json_response(error(code, message, detail), status=status)


def may_control(identity: Identity, room_id: str) -> bool:
    if identity.role == "teacher":
        return identity.room == room_id
    return identity.role == "observer" and identity.room in (ALL_ROOMS, room_id)


def is_platform_staff(identity: Identity) -> bool:
    return identity.role == "observer" and identity.room == ALL_ROOMS and not identity.consortium


def may_watch(identity: Identity, meta: dict[str, Any]) -> bool:
    if is_platform_staff(identity) or identity.room == meta.get("room"):
        return True
    consortium = meta.get("consortium") or None
    return (
        identity.role in LIBRARY_ROLES
        and consortium is not None
        and identity.consortium == consortium
    )


class RecordingApi:
    def __init__(
        self, service: RecordingService, store: RecordsStore, issuer: TokenIssuer, rooms: Any
    ) -> None:
        self.service = service
        self.store = store
        self.issuer = issuer
        self.rooms = rooms

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/recording/{room}", self.status),
            web.post("/api/recording/{room}/start", self.start),
            web.post("/api/recording/{room}/stop", self.stop),
            web.get("/api/recordings", self.library),
            web.get("/api/recordings/{id}", self.detail),
            web.get("/api/recordings/{id}/media", self.media),
            web.get("/api/recordings/{id}/comments", self.comments),
            web.post("/api/recordings/{id}/comments", self.add_comment),
            web.get("/replay", self.page),
        ]

    # -- helpers ------------------------------------------------------------------------------

    def _identity(self, request: web.Request) -> Identity:
        try:
            return self.issuer.verify_request(
                request.query.get("token"), request.headers.get("Authorization")
            )
        except TokenError as exc:
            raise HttpError(401, exc.code, exc.message, exc.detail) from exc

    def _meta(self, request: web.Request, identity: Identity) -> tuple[Path, dict[str, Any]]:
        rec_id = request.match_info["id"]
        directory = self.service.root / rec_id
        meta = read_meta(directory) if RECORDING_ID.match(rec_id) else None
        if meta is None:
            raise HttpError(404, "not_found", "找不到该录像。", f"no recording {rec_id!r}")
        if not may_watch(identity, meta):
            raise HttpError(403, "not_allowed", "无权查看该录像。", "role may not watch it")
        return directory, meta

    # -- recording on and off -----------------------------------------------------------------

    async def status(self, request: web.Request) -> web.Response:
        """Whether a room is recording, the free disk space, and the writer's warnings."""
        try:
            identity = self._identity(request)
            room_id = request.match_info["room"]
            if not may_control(identity, room_id):
                raise HttpError(403, "not_allowed", "仅本课教师或教务可以查看。", "not allowed")
        except HttpError as exc:
            return exc.response
        return web.json_response(self.service.status(room_id))

    async def start(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
            room_id = request.match_info["room"]
            if not may_control(identity, room_id):
                raise HttpError(403, "not_allowed", "仅本课教师或教务可以录像。", "not allowed")
            room = self.rooms.get(room_id)
            if room is None:
                raise HttpError(404, "unknown_room", "该课堂当前没有在上课。", "room not live")
            body = await _json_body(request)
            info = {k: str(body[k]) for k in ("title", "subject", "grade", "kind") if k in body}
            try:
                recording = self.service.start(room, info)
            except DiskSpaceError as exc:
                raise HttpError(
                    507, "disk_full", "磁盘空间不足，无法开始录像。请通知教务清理空间。", str(exc)
                ) from exc
            return web.json_response(recording.meta)
        except HttpError as exc:
            return exc.response

    async def stop(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
            room_id = request.match_info["room"]
            if not may_control(identity, room_id):
                raise HttpError(403, "not_allowed", "仅本课教师或教务可以录像。", "not allowed")
            meta = await self.service.stop(room_id)
            if meta is None:
                raise HttpError(404, "not_recording", "该课堂没有在录像。", "not recording")
            return web.json_response(meta)
        except HttpError as exc:
            return exc.response

    # -- library ------------------------------------------------------------------------------

    async def library(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
        except HttpError as exc:
            return exc.response
        q = request.query
        date = q.get("date", "")
        found = []
        root = self.service.root
        for directory in sorted(root.iterdir(), reverse=True) if root.is_dir() else []:
            meta = read_meta(directory)
            if meta is None or not may_watch(identity, meta):
                continue
            if not all(
                q.get(key, "") in str(meta.get(key, "")) for key in ("subject", "grade", "teacher")
            ):
                continue
            if date and _day(meta["started_at"]) != date:
                continue
            found.append({**meta, "date": _day(meta["started_at"])})
        return web.json_response(found)

    async def detail(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
            directory, meta = self._meta(request, identity)
        except HttpError as exc:
            return exc.response
        events = []
        path = directory / SLIDE_EVENTS
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    events.append(json.loads(line))
                except ValueError:
                    continue
        return web.json_response(
            {
                **meta,
                "slide_events": events,
                "may_comment": identity.role in COMMENT_ROLES,
            }
        )

    async def media(self, request: web.Request) -> web.StreamResponse:
        try:
            identity = self._identity(request)
            directory, _ = self._meta(request, identity)
        except HttpError as exc:
            return exc.response
        path = directory / MEDIA_FILE
        if not path.exists():
            return web.json_response(
                error("not_found", "录像文件不存在。", "no media file"), status=404
            )
        # FileResponse answers Range requests: the player seeks without downloading it all.
        return web.FileResponse(path, headers={"Content-Type": "video/webm"})

    async def comments(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
            _, meta = self._meta(request, identity)
        except HttpError as exc:
            return exc.response
        return web.json_response(self.store.comments(meta["id"]))

    async def add_comment(self, request: web.Request) -> web.Response:
        try:
            identity = self._identity(request)
            _, meta = self._meta(request, identity)
            if identity.role not in COMMENT_ROLES:
                raise HttpError(403, "not_allowed", "当前身份不能评课。", "role may not comment")
            body = await _json_body(request)
            text = str(body.get("text", "")).strip()
            at = body.get("t")
            if not text or len(text) > MAX_COMMENT_CHARS:
                raise HttpError(
                    400, "bad_message", "评语不能为空，且不超过2000字。", "text empty or too long"
                )
            longest = float(meta.get("duration") or 0) + 1
            if not isinstance(at, int | float) or not 0 <= at <= longest:
                raise HttpError(400, "bad_message", "评语时间点无效。", f"bad t {at!r}")
        except HttpError as exc:
            return exc.response
        comment = self.store.add_comment(
            meta["id"], float(at), identity.name, identity.campus or "", identity.role, text
        )
        return web.json_response(comment, status=201)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "replay.html", headers={"Cache-Control": "no-cache"})


async def _json_body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(400, "bad_json", "请求格式错误。", f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise HttpError(400, "bad_json", "请求格式错误。", "body must be a JSON object")
    return {k: v for k, v in body.items() if isinstance(k, str)}


def _day(unix: float) -> str:
    return dt.datetime.fromtimestamp(unix).strftime("%Y-%m-%d")
