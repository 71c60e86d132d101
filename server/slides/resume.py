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


@dataclass
class LeftState:
    deck: dict[str, Any] | None  # id, name, count, url, thumb (as board.py announces it)
    page: int
    ink: list[dict[str, Any]] = field(default_factory=list)
    last_event: float = 0.0  # epoch seconds of the last event
    touched: bool = False  # changed by the teacher, not only by the lesson's preparation


def left_state(path: Path) -> LeftState | None:
    """The state the events in `path` end on; None when there are none. A line the server did
    not finish writing (killed mid-write) and unknown events are skipped."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("slide events %s unreadable: %s", path, exc)
        return None
    state: LeftState | None = None
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict):
            continue
        state = _apply(state or LeftState(None, 0), event)
    return state


def _apply(state: LeftState, event: dict[str, Any]) -> LeftState:
    kind = event.get("type")
    t = event.get("t")
    if isinstance(t, int | float):
        state.last_event = float(t)
    state.touched = state.touched or event.get("planned") is not True
    if kind == "deck":
        deck_id = event.get("deck")
        if not isinstance(deck_id, str):
            return LeftState(None, 0, [], state.last_event, state.touched)
        deck = {key: event.get(key) for key in ("name", "count", "url", "thumb")}
        return LeftState({"id": deck_id, **deck}, _int(event.get("page"), 1), [],
                         state.last_event, state.touched)
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
