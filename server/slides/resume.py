"""What a lesson's slide events (`lessons/<room>/slide-events.jsonl`, written by board.py) leave
on the board: the deck, its page and the ink on that page when the last event was written. A
room that empties (the teacher reloads, the school's link drops) and opens again for the same
lesson starts from there instead of a blank board."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# how board.py writes them (json.dumps' default separators): found without parsing the line
POINTER = '"type": "pointer"'
INK = '"type": "ink"'
DECK = '"type": "deck"'
PAGE = '"type": "page"'
CLEAR = '"type": "clear"'
PLANNED = '"planned": true'


@dataclass
class LeftState:
    deck: dict[str, Any] | None  # id, name, count, url, thumb (as board.py announces it)
    page: int
    ink: list[dict[str, Any]] = field(default_factory=list)
    last_event: float = 0.0  # epoch seconds of the last event
    touched: bool = False  # changed by the teacher, not only by the lesson's preparation


def left_state(path: Path) -> LeftState | None:
    """The state the events in `path` end on; None when there are none. A line the server did
    not finish writing (killed mid-write) and unknown events are skipped. Only the lines after
    the last deck event are parsed, and of those the ink after the last page turn or clear:
    a lesson's file runs to megabytes of pointer moves and ink, read while a room opens."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("slide events %s unreadable: %s", path, exc)
        return None
    lines = text.splitlines()
    last = _last_event(lines)
    if last is None:
        return None
    first = _last(lines, (DECK,), len(lines))  # where the deck shown now was opened
    reset = _last(lines, (PAGE, CLEAR), len(lines), since=first)  # its ink starts after it
    state = LeftState(None, 0)
    for i in range(first, len(lines)):
        line = lines[i]
        if POINTER in line or (i < reset and INK in line):  # nothing a reopened room shows
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            state = _apply(state, event)
    state.last_event = last
    state.touched = any(line and PLANNED not in line for line in lines)
    return state


def _last_event(lines: list[str]) -> float | None:
    """The time of the last complete event; None when there is none."""
    for line in reversed(lines):
        try:
            event = json.loads(line)
            return float(event["t"])
        except (ValueError, KeyError, TypeError):
            continue
    return None


def _last(lines: list[str], kinds: tuple[str, ...], end: int, since: int = 0) -> int:
    """Index of the last complete line of one of `kinds` in lines[since:end]; `since` if none."""
    for i in range(end - 1, since - 1, -1):
        if any(kind in lines[i] for kind in kinds):
            try:
                json.loads(lines[i])
            except ValueError:
                continue  # cut short: not an event
            return i
    return since


def _apply(state: LeftState, event: dict[str, Any]) -> LeftState:
    kind = event.get("type")
    if kind == "deck":
        deck_id = event.get("deck")
        if not isinstance(deck_id, str):
            return LeftState(None, 0)
        deck = {key: event.get(key) for key in ("name", "count", "url", "thumb")}
        return LeftState({"id": deck_id, **deck}, _int(event.get("page"), 1))
    if state.deck is None:
        return state
    if kind == "page":
        state.page, state.ink = _int(event.get("page"), state.page), []
    elif kind == "clear":
        state.ink = []
    elif kind == "ink" and isinstance(event.get("points"), list):
        state.ink.append(
            {"points": event["points"], "color": event.get("color"), "width": event.get("width")}
        )
    return state


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
