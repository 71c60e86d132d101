"""Standing links: one long-lived link per classroom (`/class/<class id>?token=…`) and per
teacher (`/teach/<teacher id>?token=…`) that joins whatever the timetable has on now for them,
and counts down to the next lesson otherwise.

A standing token names no real room (its room is `standing/<consortium>/<kind>/<id>`), so it
cannot join a lesson by itself: the page asks `/api/timetable/now` and gets a short-lived token
for the room of the lesson or meeting on now, valid until shortly after it ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from .protocol import error
from .timetable import Timetable, TimetableService
from .tokens import Identity, TokenError, TokenIssuer

PREFIX = "standing/"
ROLE_OF = {"class": "classroom", "teacher": "teacher"}  # the standing token's role
PAGE_OF = {"classroom": "classroom", "teacher": "teacher", "member": "meeting"}
PATH_OF = {"class": "class", "teacher": "teach"}  # /class/<id>, /teach/<id>
GRACE_S = 600  # a lesson's token outlives its end by this much (overrun, a late reload)
TERM_S = 120 * 24 * 3600  # a standing link lasts a term
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def is_standing(room: str) -> bool:
    return room.startswith(PREFIX)


def mint(issuer: TokenIssuer, tt: Timetable, kind: str, subject: str, ttl: int = TERM_S) -> str:
    """A standing token for a class or a teacher of the timetable (KeyError if unknown)."""
    c = tt.consortium
    who = c.classes[subject] if kind == "class" else c.teachers[subject]
    return issuer.mint(
        f"{PREFIX}{c.id}/{kind}/{subject}", ROLE_OF[kind], who.name, f"{c.id}-{kind}-{subject}",
        who.campus, ttl=ttl, consortium=c.id,
    )


def url(base_url: str, kind: str, subject: str, token: str) -> str:
    return f"{base_url}/{PATH_OF[kind]}/{subject}?token={token}"


def links(
    issuer: TokenIssuer, service: TimetableService, base_url: str, only: str | None = None
) -> list[tuple[str, str]]:
    """(label, standing URL) for every class and teacher of the timetable `only` (of every
    timetable when it is None or not among them)."""
    chosen = [service.timetables[only]] if only in service.timetables else list(
        service.timetables.values()
    )
    out = []
    for tt in chosen:
        c = tt.consortium
        for k in c.classes.values():
            out.append((f"班级固定链接 {k.name}", url(base_url, "class", k.id,
                                                     mint(issuer, tt, "class", k.id))))
        for t in c.teachers.values():
            campus = c.campuses[t.campus].name
            out.append((f"教师固定链接 {campus} {t.name}",
                        url(base_url, "teacher", t.id, mint(issuer, tt, "teacher", t.id))))
    return out


def _subject(who: Identity) -> tuple[str, str, str] | None:
    """(consortium, kind, id) of a standing token."""
    if not is_standing(who.room):
        return None
    parts = who.room[len(PREFIX):].split("/")
    if len(parts) != 3 or parts[1] not in ROLE_OF or ROLE_OF[parts[1]] != who.role:
        return None
    return parts[0], parts[1], parts[2]


class StandingLinks:
    def __init__(
        self,
        service: TimetableService,
        issuer: TokenIssuer,
        deck_of: Callable[[str], dict[str, Any] | None] = lambda room: None,
    ) -> None:
        self.service = service
        self.issuer = issuer
        self.deck_of = deck_of  # the deck prepared for a lesson's room: pages fetch it ahead

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/api/timetable/now", self.now),
            web.get("/class/{id}", self.class_page),
            web.get("/teach/{id}", self.teacher_page),
        ]

    def answer(self, who: Identity) -> dict[str, Any]:
        """What is on now (with a token for its room) and next for a standing token's owner;
        raises LookupError when the token names nothing on the timetable."""
        subject = _subject(who)
        if subject is None:
            raise LookupError("not a standing link")
        cid, kind, sid = subject
        tt = self.service.get(cid)
        c = tt.consortium if tt is not None else None
        if tt is None or c is None or sid not in (c.classes if kind == "class" else c.teachers):
            raise LookupError(f"{kind} {sid!r} not on the timetable of {cid!r}")
        when = self.service.now()
        if kind == "class":
            now, later = tt.now_and_next(when, klass=sid)
        else:
            now, later = tt.now_and_next(when, teacher=sid)
        out: dict[str, Any] = {
            "who": {"kind": kind, "id": sid, "name": who.name},
            "now": None,
            "next": None,
            "server_time": when.isoformat(),
        }
        if now is not None:
            role, occ = now
            ttl = int((occ.end - when).total_seconds()) + GRACE_S
            token = self.issuer.mint(
                occ.room, role, who.name, who.id, who.campus, ttl=ttl, consortium=cid
            )
            out["now"] = {**occ.describe(when), "role": role, "page": PAGE_OF[role],
                          "token": token, "deck": self.deck_of(occ.room)}
        if later is not None:
            role, occ = later
            out["next"] = {**occ.describe(when), "role": role, "page": PAGE_OF[role],
                           "deck": self.deck_of(occ.room)}
        return out

    def _identity(self, request: web.Request) -> Identity:
        return self.issuer.verify_request(
            request.query.get("token"), request.headers.get("Authorization")
        )

    async def now(self, request: web.Request) -> web.Response:
        try:
            who = self._identity(request)
        except TokenError as exc:
            return web.json_response(error(exc.code, exc.message, exc.detail), status=401)
        try:
            return web.json_response(self.answer(who))
        except LookupError as exc:
            return web.json_response(
                error("not_found", "此固定链接不在课表中，请向教务索取新的链接。", str(exc)),
                status=404,
            )

    async def class_page(self, request: web.Request) -> web.FileResponse:
        return _file("classroom")

    async def teacher_page(self, request: web.Request) -> web.FileResponse:
        """The teacher page, or the meeting page while one of the teacher's meetings is on;
        the page itself shows any problem with the link."""
        try:
            now = self.answer(self._identity(request))["now"]
        except (TokenError, LookupError):
            now = None
        return _file(now["page"] if now else "teacher")


def _file(page: str) -> web.FileResponse:
    return web.FileResponse(WEB_DIR / f"{page}.html", headers={"Cache-Control": "no-cache"})
