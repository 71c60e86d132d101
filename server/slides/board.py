"""A room's slides: the deck shown, its page, the ink on that page and the laser pointer.
Only the teacher changes them (server/roles.py); everyone in the room is told, a participant
who joins late or reconnects gets the whole state at once (`slides_state`), and every change
is appended to `<data dir>/lessons/<room>/slide-events.jsonl`, the lesson's record that
recordings copy and replays read (web/js/replay_slides.js)."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..protocol import ProtocolError
from .resume import LeftState, left_state
from .store import DeckStore

log = logging.getLogger(__name__)

SLIDE_EVENTS = "slide-events.jsonl"
COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")


@dataclass(frozen=True)
class BoardPolicy:
    pointer_interval_s: float = 0.05  # at most 20 pointer moves a second reach the room
    max_points_per_stroke: int = 500  # a stroke travels in pieces while it is drawn
    max_points_per_page: int = 20_000  # bounds the state a late joiner receives
    max_width: float = 0.05  # of the page width
    precision: int = 4  # decimals of a coordinate: 1/10000 of the page is finer than a pixel
    # a room opened again this soon after its last slide event resumes from it (the same
    # lesson: a reload, a dropped link); later it is a new lesson in a reused room
    resume_within_s: float = 3 * 3600


Broadcast = Callable[[dict[str, Any]], None]


class SlideBoard:
    def __init__(
        self,
        room_id: str,
        broadcast: Broadcast,
        decks: DeckStore | None,
        events_file: Path | None,
        policy: BoardPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.room_id = room_id
        self._broadcast = broadcast
        self._decks = decks
        self._events_file = events_file
        self.policy = policy or BoardPolicy()
        self._clock = clock
        self.deck: dict[str, Any] | None = None  # id, name, count, url, thumb
        self.page = 0
        self.ink: list[dict[str, Any]] = []  # strokes on the current page
        self._ink_points = 0
        self.pointer: dict[str, float] | None = None
        self._pointer_sent = -math.inf  # monotonic time of the last pointer broadcast
        self._pointer_flush: asyncio.TimerHandle | None = None
        self._log_failed = False
        self.touched = False  # the teacher has changed it: a deck planned ahead no longer applies
        # Every message out gets the next number: the events travel on two data channels (one
        # unordered) and, until those open, on the socket, so a client keeps the newest.
        self.seq = 0

    # -- what others see ----------------------------------------------------------------------

    def state_message(self) -> dict[str, Any]:
        return {
            "type": "slides_state",
            "deck": self.deck,
            "page": self.page,
            "ink": self.ink,
            "pointer": self.pointer,
            "seq": self.seq,
        }

    def close(self) -> None:
        if self._pointer_flush is not None:
            self._pointer_flush.cancel()
            self._pointer_flush = None

    # -- the teacher's messages (validated here: the protocol only checks field types) ---------

    def apply(self, kind: str, message: dict[str, Any], sender: str) -> None:
        self.touched = True
        if kind == "slide_deck":
            self._set_deck(message["deck"], message.get("page", 1))
            return
        if self.deck is None:
            raise ProtocolError("wrong_order", "请先打开课件。", f"{kind} without a deck")
        if kind == "slide_page":
            self._set_page(message["page"])
        elif kind == "slide_pointer":
            self._move_pointer(message["x"], message["y"], sender)
        elif kind == "slide_ink":
            self._add_ink(message, sender)
        elif kind == "slide_clear":
            self._reset_page()
            self._record({"type": "clear"})
            self._announce_state()

    def _set_deck(self, deck_id: str | None, page: object, planned: bool = False) -> None:
        """`planned`: by the lesson's preparation, not the teacher (marked in the record, so
        that a room resumed from it still takes a later preparation)."""
        mark = {"planned": True} if planned else {}
        if deck_id is None:  # the deck is closed: back to the camera
            self.deck, self.page = None, 0
            self._reset_page()
            self._record({"type": "deck", "deck": None, **mark})
            self._announce_state()
            return
        manifest = self._decks.manifest(deck_id) if self._decks is not None else None
        if manifest is None:
            raise ProtocolError(
                "unknown_deck", "找不到该课件，请重新上传。", f"no deck {deck_id[:80]!r}"
            )
        count = int(manifest["count"])
        self.deck = describe_deck(deck_id, manifest)
        self.page = _page_number(page, count)
        self._reset_page()
        self._record({"type": "deck", **self.deck, "deck": deck_id, "page": self.page, **mark})
        self._announce_state()

    # -- where a room starts ------------------------------------------------------------------

    def plan(self, deck_id: str | None) -> bool:
        """The deck attached to the lesson ahead of time (None: none), at page 1, unless the
        teacher has changed the board already; whether it was taken. ProtocolError for a deck
        that is not in the store."""
        if self.touched:
            return False
        if deck_id is None:
            if self.deck is not None:
                self._set_deck(None, 0, planned=True)
        elif self.deck is None or self.deck["id"] != deck_id or self.page != 1:
            self._set_deck(deck_id, 1, planned=True)
        return True

    def restore(self, left: LeftState) -> None:
        """Start where the lesson's events left the board (not recorded again: they are in the
        record already). A deck no longer in the store, or ink the limits refuse, is left out."""
        self.touched = left.touched
        deck_id = str(left.deck["id"]) if left.deck is not None else ""
        manifest = self._decks.manifest(deck_id) if deck_id and self._decks is not None else None
        if manifest is None or not 1 <= left.page <= int(manifest["count"]):
            return
        self.deck = describe_deck(deck_id, manifest)
        self.page = left.page
        self._reset_page()
        for stroke in left.ink:
            try:
                points = [[self._coordinate(x), self._coordinate(y)] for x, y in stroke["points"]]
            except (ProtocolError, TypeError, ValueError):
                continue
            color, width = stroke["color"], stroke["width"]
            if not (isinstance(color, str) and COLOR.match(color) and _number(width)):
                continue
            if not points or self._ink_points + len(points) > self.policy.max_points_per_page:
                continue
            self.ink.append({"points": points, "color": color, "width": width})
            self._ink_points += len(points)

    def _set_page(self, page: object) -> None:
        assert self.deck is not None
        number = _page_number(page, self.deck["count"])
        if number == self.page:
            return
        self.page = number
        self._reset_page()
        self._record({"type": "page", "page": number})
        self._announce_state()

    def _reset_page(self) -> None:
        self.ink = []
        self._ink_points = 0
        self.pointer = None
        if self._pointer_flush is not None:
            self._pointer_flush.cancel()
            self._pointer_flush = None

    def _move_pointer(self, x: object, y: object, sender: str) -> None:
        if x is None or y is None:
            self.pointer = None
        else:
            self.pointer = {"x": self._coordinate(x), "y": self._coordinate(y)}
        now = time.monotonic()
        wait = self._pointer_sent + self.policy.pointer_interval_s - now
        if wait <= 0 or self.pointer is None:  # hiding the pointer is never held back
            self._send_pointer(sender)
        elif self._pointer_flush is None:  # the latest position goes when the interval ends
            loop = asyncio.get_running_loop()
            self._pointer_flush = loop.call_later(wait, self._send_pointer, sender)

    def _send_pointer(self, sender: str) -> None:
        if self._pointer_flush is not None:
            self._pointer_flush.cancel()
            self._pointer_flush = None
        self._pointer_sent = time.monotonic()
        pointer = self.pointer or {"x": None, "y": None}
        self._record({"type": "pointer", **pointer})
        self._announce({"type": "slide_pointer", "page": self.page, "by": sender, **pointer})

    def _add_ink(self, message: dict[str, Any], sender: str) -> None:
        raw = message["points"]
        if not 1 <= len(raw) <= self.policy.max_points_per_stroke:
            raise ProtocolError(
                "bad_message",
                "笔迹数据无效。",
                f"slide_ink: 1..{self.policy.max_points_per_stroke} points",
            )
        points = []
        for point in raw:
            if not (isinstance(point, list) and len(point) == 2):
                raise ProtocolError("bad_message", "笔迹数据无效。", "slide_ink: points [[x, y]]")
            points.append([self._coordinate(point[0]), self._coordinate(point[1])])
        color = message["color"]
        width = message["width"]
        if not COLOR.match(color):
            raise ProtocolError("bad_message", "笔迹颜色无效。", "slide_ink: color #rrggbb")
        if not _number(width) or not 0 < width <= self.policy.max_width:
            raise ProtocolError(
                "bad_message", "笔迹粗细无效。", f"slide_ink: width in (0, {self.policy.max_width}]"
            )
        if self._ink_points + len(points) > self.policy.max_points_per_page:
            raise ProtocolError(
                "too_much_ink", "本页笔迹已满，请先清除。", "slide_ink: page ink limit reached"
            )
        stroke = {"points": points, "color": color.lower(), "width": round(width, 5)}
        self.ink.append(stroke)
        self._ink_points += len(points)
        self._record({"type": "ink", **stroke})
        self._announce({"type": "slide_ink", "page": self.page, "by": sender, "stroke": stroke})

    def _announce_state(self) -> None:
        self.seq += 1
        self._broadcast(self.state_message())

    def _announce(self, message: dict[str, Any]) -> None:
        self.seq += 1
        self._broadcast({**message, "seq": self.seq})

    def _coordinate(self, value: object) -> float:
        if not _number(value):
            raise ProtocolError("bad_message", "坐标无效。", "coordinates are numbers in 0..1")
        return round(min(1.0, max(0.0, float(value))), self.policy.precision)  # type: ignore[arg-type]

    # -- the lesson's record ------------------------------------------------------------------

    def _record(self, event: dict[str, Any]) -> None:
        if self._events_file is None:
            return
        line = json.dumps({"t": round(self._clock(), 3), **event}, ensure_ascii=False)
        try:
            self._events_file.parent.mkdir(parents=True, exist_ok=True)
            with self._events_file.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        except OSError as exc:
            if not self._log_failed:  # once per room: the lesson goes on without its record
                log.warning("room %s: cannot keep slide events: %s", self.room_id, exc)
            self._log_failed = True


def describe_deck(deck_id: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """A deck as the room announces it (and the lesson's preparation lists it)."""
    return {
        "id": deck_id,
        "name": manifest["name"],
        "count": int(manifest["count"]),
        "url": manifest["url"],
        "thumb": manifest["thumb"],
    }


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _page_number(page: object, count: int) -> int:
    if not isinstance(page, int) or isinstance(page, bool) or not 1 <= page <= count:
        raise ProtocolError("bad_message", "页码超出范围。", f"page must be 1..{count}")
    return page


def events_file(lessons_dir: Path, room_id: str) -> Path | None:
    """Where a room's slide events go; None for a room id that is not one path component."""
    if room_id in ("", ".", "..") or any(c in room_id for c in "/\\\0"):
        return None
    return lessons_dir / room_id / SLIDE_EVENTS


class Boards:
    """Makes each room's board: the deck store and where lessons keep their events. A room
    opened again for the same lesson resumes where its events left it; otherwise it starts on
    the deck planned for it, if any."""

    def __init__(
        self,
        decks: DeckStore | None,
        lessons_dir: Path | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.decks = decks
        self.lessons_dir = lessons_dir
        self._clock = clock
        # Asked in turn for the deck a room starts on (the timetable's lessons prepared ahead).
        self.planned: list[Callable[[str], str | None]] = []

    def __call__(self, room_id: str, broadcast: Broadcast) -> SlideBoard:
        path = events_file(self.lessons_dir, room_id) if self.lessons_dir else None
        board = SlideBoard(room_id, broadcast, self.decks, path, clock=self._clock)
        left = left_state(path) if path is not None else None
        if left is not None and self._clock() - left.last_event <= board.policy.resume_within_s:
            board.restore(left)
        try:
            board.plan(self.planned_deck(room_id))  # unless the teacher had changed it
        except ProtocolError as exc:  # deleted from the store since: start closed
            log.warning("room %s: planned deck not opened: %s", room_id, exc.detail)
        return board

    def planned_deck(self, room_id: str) -> str | None:
        for ask in self.planned:
            deck = ask(room_id)
            if deck:
                return deck
        return None
