"""Wires the timetable into the application (`setup(app)`): the service, its staff API and
admin page, standing links, room titles, and the records' scheduled lessons for the week."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from .config import CONFIG_DIR
from .lesson_decks import LessonDecks
from .lesson_decks_api import LessonDeckApi
from .records import RecordsStore
from .room import RoomRegistry
from .standing import StandingLinks
from .timetable import DEFAULT_SOLVE_SECONDS, JOIN_EARLY, Timetable, TimetableService
from .timetable_api import TimetableApi
from .timetable_store import SqliteTimetableStore

log = logging.getLogger(__name__)

TIMETABLE = web.AppKey("timetable", TimetableService)
REFRESH_S = 3600.0  # the week's records are re-written hourly (a new week begins on Monday)
ROOMS_TICK_S = 15.0  # how often rooms are opened and closed on the timetable's time
WEB_DIR = Path(__file__).resolve().parent.parent / "web"


def sources(folder: str) -> list[Path]:
    directory = CONFIG_DIR / folder
    return sorted(directory.glob("*.toml")) if directory.is_dir() else []


def schedule_week(records: RecordsStore, tt: Timetable, when: dt.datetime) -> None:
    """The records' scheduled rows of this week from now on, as the current plan has them."""
    rows = [
        {
            "room": o.room, "start": o.start.timestamp(), "end": o.end.timestamp(),
            "campuses": o.campuses, "kind": o.kind, "title": o.title,
            "host_campus": o.host_campus, "subject": o.subject, "grade": o.grade,
            "teacher": o.teacher,
        }
        for o in tt.week_occurrences(when)
    ]
    try:
        records.replace_schedule(tt.id, when.timestamp(), rows)
    except sqlite3.Error:  # the records must not stop the timetable
        log.exception("timetable %s: records not scheduled", tt.id)


def keep_rooms(service: TimetableService, rooms: RoomRegistry, opened: set[str]) -> None:
    """Each lesson's and meeting's room exists from JOIN_EARLY before its start to its end
    (observers can find it; nobody has to be first); `opened`: the rooms this opened, dropped
    once their time is over and nobody is left in them."""
    when = service.now()
    current = {
        o.room for tt in service.timetables.values() for o in tt.week_occurrences(when)
        if o.start - JOIN_EARLY <= when < o.end
    }
    for room_id in current:
        rooms.open(room_id)  # again if the last one to leave closed it
    for room_id in opened - current:
        room = rooms.get(room_id)
        if room is not None:
            rooms.discard_if_empty(room)
    opened.clear()
    opened.update(current)


def setup(app: web.Application, now: Callable[[], dt.datetime] | None = None) -> None:
    from .app import BOARDS, DECKS, ISSUER, ROOMS, SETTINGS
    from .recording_app import RECORDS

    settings = app[SETTINGS]
    conf = settings.timetable
    records = app[RECORDS]
    store = SqliteTimetableStore(settings.data_dir / "timetable.sqlite")
    service = TimetableService(
        sources(str(conf.get("consortia", "consortia"))),
        store,
        now=now,
        solve_seconds=float(conf.get("solve_seconds", DEFAULT_SOLVE_SECONDS)),
        on_plan=lambda tt: schedule_week(records, tt, service.now()),
    )
    app[TIMETABLE] = service
    app[ROOMS].namers.append(service.title_of)
    # Decks prepared ahead for lessons: a lesson's room starts on its deck.
    prepared = LessonDecks(settings.data_dir / "lesson-decks.sqlite")
    lesson_decks = LessonDeckApi(service, app[ISSUER], prepared, app[DECKS], app[ROOMS])
    app[BOARDS].planned.append(prepared.deck_of)
    app.router.add_routes(lesson_decks.routes())
    # Standing links first: /api/timetable/now must not be taken for a consortium's id.
    app.router.add_routes(StandingLinks(service, app[ISSUER], lesson_decks.deck_of).routes())
    app.router.add_routes(TimetableApi(service, app[ISSUER]).routes())

    async def page(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB_DIR / "timetable.html", headers={"Cache-Control": "no-cache"})

    app.router.add_get("/timetable", page)

    async def refresh() -> None:
        while True:
            for tt in service.timetables.values():
                schedule_week(records, tt, service.now())
            await asyncio.sleep(REFRESH_S)

    async def rooms_on_time() -> None:
        opened: set[str] = set()
        while True:
            keep_rooms(service, app[ROOMS], opened)
            await asyncio.sleep(ROOMS_TICK_S)

    tasks: list[asyncio.Task[None]] = []

    async def on_startup(_: web.Application) -> None:
        tasks.extend([asyncio.ensure_future(refresh()), asyncio.ensure_future(rooms_on_time())])

    async def on_shutdown(_: web.Application) -> None:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await service.close()
        store.close()
        prepared.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
