"""The timetable's staff API (教务: observer tokens for every room, `*`): the week per campus,
teacher or class, the matcher as a job with progress, unplaced items with reasons, locks, and
the consortium's source (TOML) with edits that change nothing unless they validate."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from scheduler.model import Lock

from .protocol import error
from .timetable import EditError, Timetable, TimetableService, summary
from .tokens import TokenError, TokenIssuer

STAFF_ROOM = "*"  # an observer token for every room: the consortium's staff


def refuse(status: int, code: str, message: str, detail: str, **extra: Any) -> web.Response:
    return web.json_response({**error(code, message, detail), **extra}, status=status)


class TimetableApi:
    def __init__(self, service: TimetableService, issuer: TokenIssuer) -> None:
        self.service = service
        self.issuer = issuer

    def routes(self) -> list[web.RouteDef]:
        base = "/api/timetable/{consortium}"
        return [
            web.get("/api/timetable", self.list),
            web.get(base, self.overview),
            web.get(f"{base}/week", self.week),
            web.post(f"{base}/solve", self.solve),
            web.get(f"{base}/jobs/{{job}}", self.job),
            web.get(f"{base}/unplaced", self.unplaced),
            web.post(f"{base}/locks", self.add_lock),
            web.delete(f"{base}/locks", self.remove_lock),
            web.get(f"{base}/source", self.source),
            web.put(f"{base}/source", self.edit_source),
        ]

    # -- who may ------------------------------------------------------------------------------

    def _staff(self, request: web.Request) -> web.Response | None:
        """None for staff; else the refusal to send."""
        try:
            who = self.issuer.verify_request(
                request.query.get("token"), request.headers.get("Authorization")
            )
        except TokenError as exc:
            return refuse(401, exc.code, exc.message, exc.detail)
        if who.role != "observer" or who.room != STAFF_ROOM:
            return refuse(403, "not_allowed", "仅教务人员可管理课表。", "staff token required")
        return None

    def _timetable(self, request: web.Request) -> Timetable | web.Response:
        denied = self._staff(request)
        if denied is not None:
            return denied
        cid = request.match_info["consortium"]
        tt = self.service.get(cid)
        if tt is None:
            return refuse(404, "not_found", "没有这个教联体。", f"no consortium {cid!r}")
        return tt

    # -- reading ------------------------------------------------------------------------------

    async def list(self, request: web.Request) -> web.Response:
        denied = self._staff(request)
        if denied is not None:
            return denied
        return web.json_response([
            {"id": tt.id, "name": tt.consortium.name} for tt in self.service.timetables.values()
        ])

    async def overview(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        c = tt.consortium
        running = next((j for j in tt.jobs.values() if j.state == "running"), None)
        return web.json_response({
            "id": c.id,
            "name": c.name,
            "campuses": [{"id": k.id, "name": k.name} for k in c.campuses.values()],
            "classes": [{"id": k.id, "name": k.name, "campus": k.campus}
                        for k in c.classes.values()],
            "teachers": [{"id": t.id, "name": t.name, "campus": t.campus}
                         for t in c.teachers.values()],
            "plan": summary(tt.plan),
            "locks": tt.describe_locks(),
            "unplaced": tt.unplaced(),
            "job": running.describe() if running else None,
        })

    async def week(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        q = request.query
        if sum(bool(q.get(k)) for k in ("campus", "teacher", "class")) != 1:
            return refuse(400, "bad_request", "请选择一个校区、教师或班级。",
                          "give exactly one of campus, teacher, class")
        plan = tt.plan
        job = tt.jobs.get(q.get("job", ""))
        if job is not None and job.state == "running" and job.preview is not None:
            plan = job.preview  # the greedy preview while CP-SAT works
        try:
            week = tt.week(campus=q.get("campus", ""), teacher=q.get("teacher", ""),
                           klass=q.get("class", ""), plan=plan)
        except KeyError as exc:
            return refuse(404, "not_found", "没有这个校区、教师或班级。", str(exc))
        return web.json_response({**week, "plan": summary(plan)})

    async def unplaced(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        return web.json_response(tt.unplaced())

    async def source(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        return web.Response(text=tt.source, content_type="application/toml", charset="utf-8")

    # -- the matcher --------------------------------------------------------------------------

    async def solve(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        try:
            job = tt.start_solve()
        except EditError as exc:
            return refuse(409, exc.code, exc.message, exc.detail)
        return web.json_response(job.describe(), status=202)

    async def job(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        job = tt.jobs.get(request.match_info["job"])
        if job is None:
            return refuse(404, "not_found", "没有这次排课。", "no such job")
        return web.json_response({**job.describe(), "plan": summary(tt.plan)})

    # -- changes ------------------------------------------------------------------------------

    async def add_lock(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        try:
            body = await request.json()
            lock = _lock(body)
        except (ValueError, KeyError, TypeError) as exc:
            return refuse(400, "bad_request", "锁定格式错误：需要 item、day、at。", str(exc))
        return self._apply(lambda: tt.add_lock(lock), tt, status=201)

    async def remove_lock(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        try:
            lock = _lock(dict(request.query))
        except (ValueError, KeyError, TypeError) as exc:
            return refuse(400, "bad_request", "锁定格式错误：需要 item、day、at。", str(exc))
        return self._apply(lambda: tt.remove_lock(lock), tt)

    async def edit_source(self, request: web.Request) -> web.Response:
        tt = self._timetable(request)
        if isinstance(tt, web.Response):
            return tt
        try:
            text = await request.text()
        except UnicodeDecodeError as exc:
            return refuse(400, "bad_request", "配置应为 UTF-8 文本。", str(exc))
        return self._apply(lambda: tt.edit_source(text), tt)

    @staticmethod
    def _apply(change: Any, tt: Timetable, status: int = 200) -> web.Response:
        try:
            change()
        except EditError as exc:
            code = 404 if exc.code == "not_found" else 409 if exc.code == "lock_conflict" else 400
            return refuse(code, exc.code, exc.message, exc.detail, line=exc.line)
        return web.json_response({"plan": summary(tt.plan), "unplaced": tt.unplaced()},
                                 status=status)


def _lock(data: dict[str, Any]) -> Lock:
    item = data["item"]
    day, at = int(data["day"]), int(data["at"])
    if not isinstance(item, str) or not item:
        raise TypeError("item must be a non-empty string")
    return Lock(item, day, at)
