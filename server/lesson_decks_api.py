"""Preparing a lesson's deck ahead of time (课前准备课件), over HTTP: the lesson's teacher (their
standing link's token, or a teacher token for the lesson's room) or staff attach a deck already
uploaded (POST /api/decks) to one of the timetable's lessons that has not ended. The lesson's
room starts on it at page 1, and the classrooms' standing pages prefetch it while they count
down (the deck is in the `next` of /api/timetable/now).

    GET    /api/lessons/upcoming?token=T[&consortium=C&teacher=ID]   the teacher's coming lessons
    PUT    /api/lessons/{room}/deck?token=T   {"deck": "<id>"}          attach (or replace)
    DELETE /api/lessons/{room}/deck?token=T                             detach
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from typing import Any

from aiohttp import web

from .lesson_decks import LessonDecks
from .protocol import ProtocolError
from .room import RoomRegistry
from .slides.board import describe_deck
from .slides.store import DECK_ID, DeckStore
from .standing import PREFIX as STANDING
from .timetable import Occurrence, Timetable, TimetableService
from .timetable_api import STAFF_ROOM, refuse
from .tokens import Identity, TokenError, TokenIssuer

log = logging.getLogger(__name__)

PREPARE_AHEAD = dt.timedelta(days=28)  # how far ahead a lesson's deck may be attached
UPCOMING_DAYS = 8  # the teacher's list: today and the week after


class LessonDeckApi:
    def __init__(
        self,
        service: TimetableService,
        issuer: TokenIssuer,
        store: LessonDecks,
        decks: DeckStore,
        rooms: RoomRegistry,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.store = store
        self.decks = decks
        self.rooms = rooms

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/lessons/upcoming", self.upcoming),
            web.put("/api/lessons/{room}/deck", self.attach),
            web.delete("/api/lessons/{room}/deck", self.detach),
        ]

    # -- what a lesson's deck looks like to pages -------------------------------------------

    def deck_of(self, room: str) -> dict[str, Any] | None:
        """The deck attached to a lesson's room, as pages fetch it; None when there is none
        (or it is no longer in the store)."""
        deck_id = self.store.deck_of(room)
        manifest = self.decks.manifest(deck_id) if deck_id else None
        if deck_id is None or manifest is None:
            return None
        return {**describe_deck(deck_id, manifest), "manifest": f"/decks/{deck_id}/manifest.json"}

    # -- who may ------------------------------------------------------------------------------

    def _identity(self, request: web.Request) -> Identity | web.Response:
        try:
            return self.issuer.verify_request(
                request.query.get("token"), request.headers.get("Authorization")
            )
        except TokenError as exc:
            return refuse(401, exc.code, exc.message, exc.detail)

    @staticmethod
    def _may_prepare(who: Identity, tt: Timetable, teacher: str, room: str) -> bool:
        """The lesson's teacher (standing link or a teacher token for its room) or staff."""
        if who.role == "observer":
            return who.room == STAFF_ROOM and who.consortium in (None, tt.id)
        return who.role == "teacher" and who.room in (f"{STANDING}{tt.id}/teacher/{teacher}", room)

    def _lesson(
        self, request: web.Request
    ) -> tuple[Identity, Timetable, Occurrence] | web.Response:
        """The lesson of the request's room, checked: the caller may prepare it, not ended."""
        who = self._identity(request)
        if isinstance(who, web.Response):
            return who
        room = request.match_info["room"]
        found = self.service.lesson(room)
        if found is None:
            return refuse(404, "unknown_lesson", "课表中没有这节课，请刷新后重试。",
                          f"no timetabled lesson has room {room[:120]!r}")
        tt, occ, teacher = found
        if not self._may_prepare(who, tt, teacher, room):
            return refuse(403, "not_allowed", "只有本节课的主讲教师或教务人员可以为它准备课件。",
                          "the lesson's teacher or staff only")
        now = self.service.now()
        if occ.end <= now:
            return refuse(409, "lesson_over", "这节课已经结束，不能再为它准备课件。",
                          f"lesson ended at {occ.end.isoformat()}")
        if occ.start - now > PREPARE_AHEAD:
            return refuse(409, "too_early", f"只能为 {PREPARE_AHEAD.days} 天内的课准备课件。",
                          f"lesson starts at {occ.start.isoformat()}")
        return who, tt, occ

    # -- handlers -----------------------------------------------------------------------------

    async def upcoming(self, request: web.Request) -> web.Response:
        who = self._identity(request)
        if isinstance(who, web.Response):
            return who
        if who.role == "teacher" and who.room.startswith(STANDING):
            parts = who.room[len(STANDING):].split("/")
            cid, teacher = (parts[0], parts[2]) if len(parts) == 3 else ("", "")
        elif who.role == "observer" and who.room == STAFF_ROOM:
            cid, teacher = request.query.get("consortium", ""), request.query.get("teacher", "")
            if who.consortium not in (None, cid):
                return refuse(403, "not_allowed", "只能查看本教联体的课。", "other consortium")
        else:
            return refuse(403, "not_allowed", "请使用教师的固定链接或教务账号。",
                          "a teacher's standing token or a staff token required")
        tt = self.service.get(cid)
        if tt is None or teacher not in tt.consortium.teachers:
            return refuse(404, "not_found", "课表中没有这位教师。",
                          f"no teacher {teacher!r} in {cid!r}")
        now = self.service.now()
        lessons = [
            {**occ.describe(now), "deck": self.deck_of(occ.room)}
            for role, occ in tt.coming(now, teacher=teacher, days=UPCOMING_DAYS)
            if role == "teacher" and occ.end > now
        ]
        name = tt.consortium.teachers[teacher].name
        return web.json_response({"teacher": {"id": teacher, "name": name}, "lessons": lessons})

    async def attach(self, request: web.Request) -> web.Response:
        checked = self._lesson(request)
        if isinstance(checked, web.Response):
            return checked
        who, tt, occ = checked
        try:
            body = await request.json()
        except ValueError as exc:
            return refuse(400, "bad_request", "请求格式错误：需要 {\"deck\": 课件编号}。", str(exc))
        deck_id = body.get("deck") if isinstance(body, dict) else None
        if not isinstance(deck_id, str) or not DECK_ID.match(deck_id):
            return refuse(400, "bad_request", "请求格式错误：需要 {\"deck\": 课件编号}。",
                          "body must be {\"deck\": \"<64 hex digits>\"}")
        if self.decks.manifest(deck_id) is None:
            return refuse(404, "unknown_deck", "找不到该课件，请先上传。", f"no deck {deck_id}")
        try:
            self.store.attach(occ.room, tt.id, deck_id, who.id)
        except sqlite3.Error as exc:
            log.exception("lesson %s: deck not attached", occ.room)
            return refuse(500, "not_saved", "课件未能保存，请稍后重试。", str(exc))
        log.info("lesson %s: deck %s attached by %s", occ.room, deck_id[:12], who.id)
        return web.json_response(self._answer(occ, deck_id))

    async def detach(self, request: web.Request) -> web.Response:
        checked = self._lesson(request)
        if isinstance(checked, web.Response):
            return checked
        who, _, occ = checked
        try:
            removed = self.store.detach(occ.room)
        except sqlite3.Error as exc:
            log.exception("lesson %s: deck not detached", occ.room)
            return refuse(500, "not_saved", "未能取消，请稍后重试。", str(exc))
        if not removed:
            return refuse(404, "no_deck", "这节课还没有准备课件。", "no deck attached")
        log.info("lesson %s: deck detached by %s", occ.room, who.id)
        return web.json_response(self._answer(occ, None))

    def _answer(self, occ: Occurrence, deck_id: str | None) -> dict[str, Any]:
        """The lesson with its deck; a room already open that nobody has changed starts on it."""
        live = False
        room = self.rooms.get(occ.room)
        if room is not None:
            try:
                live = room.slides.plan(deck_id)
            except ProtocolError as exc:  # removed from the store meanwhile
                log.warning("lesson %s: %s", occ.room, exc.detail)
        now = self.service.now()
        return {"lesson": occ.describe(now), "deck": self.deck_of(occ.room), "live": live}
