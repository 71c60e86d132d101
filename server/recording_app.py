"""Wires recording, records, reports, replay and meeting minutes into the application:
`setup(app)`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import meeting
from .config import Settings
from .recording import RecordingPolicy, RecordingService, guess_subject_grade
from .recording_api import RecordingApi
from .records import RecordsKeeper, RecordsStore

if TYPE_CHECKING:
    from .room import Room

log = logging.getLogger(__name__)

RECORDINGS = web.AppKey("recordings", RecordingService)
RECORDS = web.AppKey("records", RecordsStore)
RECORDS_DB = "records.sqlite3"


def lesson_facts(settings: Settings) -> dict[str, dict[str, str]]:
    """room -> what the consortium's config says about the lesson held there."""
    if settings.demo is None:
        return {}
    facts = {}
    for lesson in settings.demo.lessons:
        subject, grade = guess_subject_grade(lesson.title)
        facts[lesson.room] = {
            "title": lesson.title,
            "consortium": settings.demo.id,
            "host_campus": lesson.teacher.get("campus", ""),
            "teacher": lesson.teacher.get("name", ""),
            "subject": subject,
            "grade": grade,
        }
    return facts


def consortium_finder(store: RecordsStore) -> Callable[[Room], str]:
    """A room's consortium where the config does not name it: the timetable's (its lesson rows
    in the records), else the one the tokens of those in it name, the teacher's first."""

    def consortium_of(room: Room) -> str:
        found = store.consortium_of(room.id)
        if found:
            return found
        people = sorted(room.participants.values(), key=lambda p: p.identity.role != "teacher")
        return next((p.identity.consortium for p in people if p.identity.consortium), "")

    return consortium_of


def setup(app: web.Application) -> None:
    from .app import ISSUER, ROOMS, SETTINGS

    settings = app[SETTINGS]
    facts = lesson_facts(settings)
    store = RecordsStore(settings.data_dir / RECORDS_DB)
    keeper = RecordsKeeper(store, facts)
    minutes = meeting.setup(app, store, app[ISSUER])

    def recording_changed(meta: dict[str, Any]) -> None:
        keeper.recording_changed(meta)
        if meta["state"] != "recording":  # ended: the meeting's minutes go beside it
            minutes.keep_with(meta, service.root / str(meta["id"]))

    service = RecordingService(
        settings.data_dir,
        RecordingPolicy.from_settings(settings),
        facts,
        recording_changed,
        consortium_finder(store),
    )
    app[RECORDS] = store
    app[RECORDINGS] = service
    # The keeper first: a recording that starts as the teacher joins finds its lesson row.
    app[ROOMS].observers.extend([keeper, service])
    app.router.add_routes(RecordingApi(service, store, app[ISSUER], app[ROOMS]).routes())
    from . import reports

    reports.setup(app, store, settings)

    async def on_startup(_: web.Application) -> None:
        service.recover_in_background()
        keeper.start()

    async def on_shutdown(_: web.Application) -> None:
        await service.close()
        await keeper.close()

    async def on_cleanup(_: web.Application) -> None:
        store.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
