"""Which lessons are recorded, where the files go, and what happens when a lesson ends.

A recording is a directory `<data dir>/recordings/<recording id>/` holding `lesson.webm` (the
teacher's camera and microphone, remuxed by media/recorder.py, never re-encoded), `meta.json`
(room, title, teacher, subject, grade, campus, start and end in unix seconds) and, once the
lesson ends, the lesson's slide events copied from `<data dir>/lessons/<room>/slide-events.jsonl`.
A recording left as "recording" by a server that died is finalized at the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from media.recorder import (
    DiskPolicy,
    DiskSpaceError,
    Recorder,
    finalize,
    free_bytes,
    media_duration,
)

if TYPE_CHECKING:
    from .config import Settings
    from .room import Participant, Room

log = logging.getLogger(__name__)

MEDIA_FILE = "lesson.webm"
META_FILE = "meta.json"
SLIDE_EVENTS = "slide-events.jsonl"
RECORDING_ID = re.compile(r"^[A-Za-z0-9._-]{1,120}$")

# Chinese for the warnings the writer thread raises; the teacher's page shows them.
WARNINGS = {
    "disk_low": "录像磁盘空间不足，请通知教务清理空间。",
    "disk_full": "磁盘空间已满，录像已停止（已录部分已保存）。",
    "write_failed": "录像写入失败，已停止（已录部分已保存）。",
}
SUBJECTS = (
    "语文",
    "数学",
    "英语",
    "物理",
    "化学",
    "生物",
    "历史",
    "地理",
    "道德与法治",
    "政治",
    "科学",
    "音乐",
    "美术",
    "体育",
    "信息技术",
)
GRADE = re.compile(r"([一二三四五六七八九]年级|高[一二三]|初[一二三])")


@dataclass(frozen=True)
class RecordingPolicy:
    default_on: bool
    disk: DiskPolicy

    @classmethod
    def from_settings(cls, settings: Settings) -> RecordingPolicy:
        raw = settings.recording
        mb = 1024**2
        return cls(
            default_on=bool(raw.get("default", False)),
            disk=DiskPolicy(
                min_free_bytes=int(raw.get("min_free_mb", 512)) * mb,
                warn_free_bytes=int(raw.get("warn_free_mb", 2048)) * mb,
            ),
        )


def guess_subject_grade(title: str) -> tuple[str, str]:
    """A lesson title such as 七年级数学·同步课堂 names its subject and grade."""
    subject = next((s for s in SUBJECTS if s in title), "")
    grade = GRADE.search(title)
    return subject, grade.group(1) if grade else ""


def read_meta(directory: Path) -> dict[str, Any] | None:
    try:
        return json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_meta(directory: Path, meta: dict[str, Any]) -> None:
    tmp = directory / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, directory / META_FILE)  # a crash never leaves half a meta.json


def copy_slide_events(src: Path, dst: Path, start: float, end: float) -> int:
    """The events of [start, end], preceded by the last deck and page events before start (the
    page shown when recording began). Returns the number of lines written."""
    try:
        lines = src.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    before: dict[str, str] = {}
    during: list[str] = []
    for line in lines:
        try:
            event = json.loads(line)
            t = float(event["t"])
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line after a crash
        if t < start and event.get("type") in ("deck", "page"):
            if event["type"] == "deck":
                before.pop("page", None)
            before[event["type"]] = line
        elif start <= t <= end:
            during.append(line)
    kept = [before[k] for k in ("deck", "page") if k in before] + during
    dst.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    return len(kept)


class Recording:
    def __init__(self, directory: Path, meta: dict[str, Any], recorder: Recorder) -> None:
        self.dir = directory
        self.meta = meta
        self.recorder = recorder

    @property
    def id(self) -> str:
        return str(self.meta["id"])


RecordingHook = Callable[[dict[str, Any]], None]


class RecordingService:
    """A RoomObserver: records the rooms asked for (or all, by config) while a teacher is in."""

    def __init__(
        self,
        data_dir: Path,
        policy: RecordingPolicy,
        lessons: dict[str, dict[str, str]] | None = None,
        on_change: RecordingHook | None = None,
        consortium_of: Callable[[Room], str] | None = None,
    ) -> None:
        self.root = data_dir / "recordings"
        self.lessons_dir = data_dir / "lessons"
        self.policy = policy
        self._lessons = lessons or {}  # room -> facts from the consortium's config
        self._on_change = on_change or (lambda meta: None)
        # A room's consortium where the config does not name it (the timetable's, the tokens')
        self._consortium_of = consortium_of or (lambda room: "")
        self.active: dict[str, Recording] = {}  # room id -> recording
        self._wanted: dict[str, bool] = {}  # what the teacher or staff asked, per room
        self._rooms: dict[str, Room] = {}
        self.warnings: dict[str, list[dict[str, Any]]] = {}  # room id -> what the writer said
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- asked for ----------------------------------------------------------------------------

    def start(self, room: Room, info: dict[str, str] | None = None) -> Recording:
        """Start recording a live room. Raises DiskSpaceError when the disk is too full."""
        self._wanted[room.id] = True
        existing = self.active.get(room.id)
        if existing is not None:
            return existing
        self.root.mkdir(parents=True, exist_ok=True)
        now = time.time()
        rec_id = f"{_safe(room.id)}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}"
        directory = self.root / rec_id
        n = 1
        while directory.exists():
            n += 1
            directory = self.root / f"{rec_id}-{n}"
        directory.mkdir()
        meta = self._meta(room, directory.name, now, info or {})

        def media_started(unix: float) -> None:
            meta["media_start"] = unix  # video time 0 is this unix time: slides align to it
            write_meta(directory, meta)

        try:
            recorder = Recorder(
                directory / MEDIA_FILE,
                self.policy.disk,
                self._threadsafe_notify(room.id),
                media_started,
            )
        except DiskSpaceError:
            directory.rmdir()
            self._wanted[room.id] = False
            raise
        write_meta(directory, meta)
        recording = self.active[room.id] = Recording(directory, meta, recorder)
        self._rooms[room.id] = room
        self._attach(room, recording)
        self._tell_teachers(room, {"type": "recording", "recording": True, "id": recording.id})
        self._on_change(meta)
        log.info("recording %s started", recording.id)
        return recording

    async def stop(self, room_id: str, state: str = "done") -> dict[str, Any] | None:
        self._wanted[room_id] = False
        recording = self.active.pop(room_id, None)
        if recording is None:
            return None
        room = self._rooms.pop(room_id, None)
        await asyncio.to_thread(recording.recorder.close)
        meta = recording.meta
        if recording.recorder.stopped.is_set():
            state = "stopped"
        self._end_meta(recording.dir, meta, time.time(), state, recording.recorder)
        if room is not None:
            self._tell_teachers(room, {"type": "recording", "recording": False, "id": meta["id"]})
        self._on_change(meta)
        log.info("recording %s ended (%s)", meta["id"], state)
        return meta

    def status(self, room_id: str) -> dict[str, Any]:
        recording = self.active.get(room_id)
        return {
            "room": room_id,
            "recording": recording is not None,
            "id": recording.id if recording else None,
            "free_mb": free_bytes(self.root if self.root.exists() else self.root.parent) // 1024**2,
            "warnings": self.warnings.get(room_id, [])[-10:],
            "now": time.time(),
        }

    # -- RoomObserver -------------------------------------------------------------------------

    def participant_joined(self, room: Room, participant: Participant) -> None:
        if (
            participant.identity.role == "teacher"
            and room.id not in self.active
            and self._wanted.get(room.id, self.policy.default_on)
        ):
            try:
                self.start(room)
            except DiskSpaceError as exc:
                log.warning("room %s not recorded: %s", room.id, exc)
                warning = _warning("disk_full", str(exc))
                self.warnings.setdefault(room.id, []).append(warning | {"t": time.time()})
                participant.session.post_send(warning)
            except OSError:
                log.exception("room %s: recording could not start", room.id)

    def participant_left(self, room: Room, participant: Participant) -> None:
        pass

    def media_changed(self, room: Room) -> None:
        recording = self.active.get(room.id)
        if recording is not None:
            self._attach(room, recording)

    def room_closed(self, room: Room) -> None:
        self._wanted.pop(room.id, None)
        if room.id in self.active:
            self._own(self.stop(room.id))

    # -- start-up and shutdown ----------------------------------------------------------------

    def interrupted(self) -> list[Path]:
        """Recordings a dead server left in state "recording". Read before any new one starts."""
        if not self.root.is_dir():
            return []
        return [
            d
            for d in sorted(self.root.iterdir())
            if (read_meta(d) or {}).get("state") == "recording"
        ]

    def recover(self, directories: list[Path]) -> list[str]:
        """Finalize recordings cut short: copy the packets written into a complete file (cues,
        duration) and mark them interrupted. Blocking: run it in a thread. Safe to repeat after
        a crash during it: the cut-short file is kept as lesson.partial.webm until the copy is
        complete."""
        recovered = []
        for directory in directories:
            meta = read_meta(directory)
            if meta is None:
                continue
            media = directory / MEDIA_FILE
            partial = directory / "lesson.partial.webm"
            duration = 0.0
            try:
                if not partial.exists() and media.exists() and media.stat().st_size > 0:
                    os.replace(media, partial)
                if partial.exists():
                    tmp = directory / "lesson.finalizing.webm"
                    duration = finalize(partial, tmp)
                    os.replace(tmp, media)
                    partial.unlink()
            except Exception:  # unreadable: the bytes stay under their partial name
                log.exception("recording %s: could not finalize", directory.name)
            start = float(meta.get("media_start") or meta["started_at"])
            self._end_meta(directory, meta, start + duration, "interrupted", None)
            recovered.append(directory.name)
        return recovered

    def recover_in_background(self) -> None:
        """Finalize what a dead server left, without holding up the start: a long lesson takes
        a while to copy. The list is taken now, before any new recording starts."""
        pending = self.interrupted()
        if pending:
            self._own(self._recover(pending))

    async def _recover(self, pending: list[Path]) -> None:
        recovered = await asyncio.to_thread(self.recover, pending)
        log.warning("finalized recordings cut short by a restart: %s", recovered)

    async def close(self) -> None:
        for room_id in list(self.active):
            await self.stop(room_id)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- helpers ------------------------------------------------------------------------------

    def _attach(self, room: Room, recording: Recording) -> None:
        teacher = next(
            (p for p in room.participants.values() if p.identity.role == "teacher"), None
        )
        for kind, name in (("video", "camera"), ("audio", "mic")):
            publication = teacher.publications.get(name) if teacher else None
            layers = publication.layers if publication is not None else []
            recording.recorder.attach(kind, layers[0] if layers else None)
        if teacher is not None and not recording.meta.get("teacher"):
            recording.meta["teacher"] = teacher.identity.name
            recording.meta["campus"] = teacher.identity.campus or ""
            write_meta(recording.dir, recording.meta)

    def _meta(self, room: Room, rec_id: str, now: float, info: dict[str, str]) -> dict[str, Any]:
        known = self._lessons.get(room.id, {})
        title = info.get("title") or room.title
        subject, grade = guess_subject_grade(title)
        teacher = next(
            (p.identity for p in room.participants.values() if p.identity.role == "teacher"),
            None,
        )
        return {
            "id": rec_id,
            "room": room.id,
            "kind": info.get("kind") or known.get("kind") or "lesson",
            "title": title,
            "consortium": known.get("consortium") or self._consortium_of(room),
            "teacher": teacher.name if teacher else known.get("teacher", ""),
            "campus": (teacher.campus if teacher else None) or known.get("host_campus", ""),
            "subject": info.get("subject") or known.get("subject") or subject,
            "grade": info.get("grade") or known.get("grade") or grade,
            "started_at": now,
            "media_start": None,
            "ended_at": None,
            "duration": 0.0,
            "file": MEDIA_FILE,
            "state": "recording",
        }

    def _end_meta(
        self,
        directory: Path,
        meta: dict[str, Any],
        end: float,
        state: str,
        recorder: Recorder | None,
    ) -> None:
        media = directory / MEDIA_FILE
        if recorder is not None and recorder.media_start_unix is not None:
            meta["media_start"] = recorder.media_start_unix
        if meta.get("media_start") is None:
            meta["media_start"] = meta["started_at"]
        duration = 0.0
        if media.exists():
            try:
                duration = media_duration(media)
            except Exception:
                log.exception("recording %s: unreadable media", directory.name)
        meta.update(
            ended_at=end,
            duration=round(duration, 3),
            bytes=media.stat().st_size if media.exists() else 0,
            state=state,
            slide_events=copy_slide_events(
                self.lessons_dir / meta["room"] / SLIDE_EVENTS,
                directory / SLIDE_EVENTS,
                float(meta["started_at"]),
                end,
            ),
        )
        if recorder is not None and recorder.stats.warnings:
            meta["warnings"] = list(recorder.stats.warnings)
        write_meta(directory, meta)

    def _threadsafe_notify(self, room_id: str) -> Callable[[str, str], None]:
        loop = asyncio.get_running_loop()

        def notify(code: str, detail: str) -> None:
            loop.call_soon_threadsafe(self._on_writer_problem, room_id, code, detail)

        return notify

    def _on_writer_problem(self, room_id: str, code: str, detail: str) -> None:
        log.warning("recording in %s: %s (%s)", room_id, code, detail)
        self.warnings.setdefault(room_id, []).append(_warning(code, detail) | {"t": time.time()})
        room = self._rooms.get(room_id)
        if room is not None:
            self._tell_teachers(room, _warning(code, detail))
        if code != "disk_low" and room_id in self.active:
            self._own(self.stop(room_id, "stopped"))

    def _tell_teachers(self, room: Room, message: dict[str, Any]) -> None:
        for participant in room.participants.values():
            if participant.identity.role in ("teacher", "observer"):
                participant.session.post_send(message)

    def _own(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _warning(code: str, detail: str) -> dict[str, Any]:
    return {"type": "recording_warning", "code": code, "message": WARNINGS[code], "detail": detail}


def _safe(room_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", room_id)[:80] or "room"
