"""The aiohttp application: pages, the signalling WebSocket, health, metrics, staff API."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from pathlib import Path

from aiohttp import WSMsgType, web
from aiortc import RTCConfiguration
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily

from media import rtc_internals
from media.stats import ForwardStats

from . import recording_app, standing, timetable_app
from .config import Settings
from .protocol import MAX_MESSAGE_BYTES, ProtocolError, error, parse
from .room import RoomRegistry
from .session import Session
from .slides.api import DeckApi
from .slides.board import Boards
from .slides.limits import DeckLimits
from .slides.pacing import DeckPacing
from .slides.store import DeckStore
from .tokens import TokenError, TokenIssuer

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
PAGES = ("teacher", "classroom", "observer", "overview")

ROOMS = web.AppKey("rooms", RoomRegistry)
ISSUER = web.AppKey("issuer", TokenIssuer)
STATS = web.AppKey("stats", ForwardStats)
SESSIONS = web.AppKey("sessions", set)
SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", CollectorRegistry)
DECKS = web.AppKey("decks", DeckStore)
BOARDS = web.AppKey("boards", Boards)


def create_app(
    settings: Settings, now: Callable[[], dt.datetime] | None = None
) -> web.Application:
    """`now`: the timetable's clock (Asia/Shanghai); the real one unless a test injects one."""
    rtc_internals.check_compatibility()
    rtc_internals.use_host_addresses(settings.ice_addresses)
    rtc_internals.enable_red()
    app = web.Application(client_max_size=1024**2)
    titles = {}
    if settings.demo is not None:
        titles = {lesson.room: lesson.title for lesson in settings.demo.lessons}
    app[SETTINGS] = settings
    limits = DeckLimits.from_settings(settings.slides)
    app[DECKS] = decks = DeckStore(settings.data_dir / "decks", limits)
    boards = Boards(decks, settings.data_dir / "lessons")  # where recordings find slide events
    app[BOARDS] = boards
    app[ROOMS] = RoomRegistry(titles, ladder=settings.ladder, boards=boards)
    app[ISSUER] = TokenIssuer(settings.secret, settings.token_ttl)
    app[STATS] = ForwardStats()
    app[SESSIONS] = set()
    app[METRICS] = _metrics(app)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/rooms", rooms)
    app.router.add_get("/api/stats", stats)
    app.router.add_get("/", index)
    for page in PAGES:
        app.router.add_get(f"/{page}", _page(page))
    recording_app.setup(app)  # recording, records, reports, replay
    timetable_app.setup(app, now)  # after the records: it schedules their lessons
    pacing = DeckPacing(app[ISSUER], app[ROOMS])  # prefetched pages beside the live lesson
    app.router.add_routes(DeckApi(decks, app[ISSUER], pacing).routes())
    app.router.add_static("/static/", WEB_DIR, append_version=False)
    app.on_startup.append(_clean_decks)
    app.on_shutdown.append(_close_sessions)
    app.on_shutdown.append(_close_decks)
    return app


async def _clean_decks(app: web.Application) -> None:
    app[DECKS].clean_temporary()  # what a killed server left mid-upload


async def _close_decks(app: web.Application) -> None:
    await app[DECKS].close()  # renders under way are killed


def _page(name: str):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / f"{name}.html", headers={"Cache-Control": "no-cache"})

    return handler


async def index(request: web.Request) -> web.Response:
    return web.Response(
        text="<!doctype html><meta charset=utf-8><title>同课</title>"
        "<p>同课 Tongke 正在运行。请使用教务发给您的课堂链接进入。</p>",
        content_type="text/html",
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=15, max_msg_size=4 * MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    try:
        identity = request.app[ISSUER].verify(request.query.get("token", ""))
    except TokenError as exc:
        await ws.send_json({"v": 1, **error(exc.code, exc.message, exc.detail)})
        await ws.close(code=4401, message=exc.code.encode())
        return ws
    if standing.is_standing(identity.room):  # it opens a page; the page joins the lesson
        await ws.send_json({"v": 1, **error(
            "bad_token", "固定链接请在浏览器中打开。", "a standing token joins no room itself"
        )})
        await ws.close(code=4401, message=b"bad_token")
        return ws
    session = Session(
        ws,
        identity,
        request.app[ROOMS],
        request.app[STATS],
        RTCConfiguration(iceServers=[]),
        adaptive=request.app[SETTINGS].adaptive,
    )
    request.app[SESSIONS].add(session)
    loop_task = asyncio.ensure_future(session.run())
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                try:
                    session.post_message(parse(msg.data))
                except ProtocolError as exc:
                    session.post_send(exc.to_message())
            elif msg.type == WSMsgType.BINARY:
                session.post_send(error("bad_json", "消息格式错误。", "binary frames not accepted"))
            elif msg.type == WSMsgType.ERROR:
                break
    finally:
        session.post_close("")
        try:
            await loop_task
        finally:
            request.app[SESSIONS].discard(session)
    return ws


async def _close_sessions(app: web.Application) -> None:
    for session in list(app[SESSIONS]):
        session.post_close("server_shutdown")


async def health(request: web.Request) -> web.Response:
    registry = request.app[ROOMS]
    return web.json_response(
        {"status": "ok", "rooms": len(registry.rooms), "participants": registry.participant_count}
    )


ALL_ROOMS = "*"  # an observer token for this room sees every live room (consortium staff)


async def rooms(request: web.Request) -> web.Response:
    """Live rooms with participants and their link health: staff only (observer tokens)."""
    try:
        identity = request.app[ISSUER].verify_request(
            request.query.get("token"), request.headers.get("Authorization")
        )
    except TokenError as exc:
        return web.json_response(error(exc.code, exc.message, exc.detail), status=401)
    if identity.role != "observer":
        return web.json_response(
            error("not_allowed", "仅巡课人员可查看。", "observer token required"), status=403
        )
    live = request.app[ROOMS].rooms.values()
    return web.json_response([r.describe() for r in live if identity.room in (ALL_ROOMS, r.id)])


async def stats(request: web.Request) -> web.Response:
    packets = octets = 0
    for session in request.app[SESSIONS]:
        p, o = session.sent_counts()
        packets += p
        octets += o
    return web.json_response(
        {**request.app[STATS].snapshot(), "packets_out": packets, "bytes_out": octets}
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=generate_latest(request.app[METRICS]), content_type="text/plain", charset="utf-8"
    )


def _metrics(app: web.Application) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("tongke_rooms", "Live rooms", registry=registry).set_function(
        lambda: len(app[ROOMS].rooms)
    )
    Gauge("tongke_participants", "Connected participants", registry=registry).set_function(
        lambda: app[ROOMS].participant_count
    )

    class _Forwarding:
        def collect(self):
            s = app[STATS]
            for name, value, doc in (
                ("frames_in", s.frames_in, "Frames received from publishers"),
                ("frames_out", s.frames_out, "Frames handed to subscribers"),
                ("frames_dropped", s.frames_dropped, "Frames dropped for slow subscribers"),
                ("plis_sent", s.plis_sent, "Keyframe requests sent to publishers"),
            ):
                yield CounterMetricFamily(f"tongke_{name}", doc, value=value)

    registry.register(_Forwarding())
    return registry
