"""The lesson's live events over WebRTC data channels: the primary path for slides.

The server opens two channels on every participant's subscribe connection (data channels
are bidirectional, so the teacher sends its slide events back on them):

- `events`: ordered and reliable: deck, page, ink, clear and the whole state (`slides_state`,
  sent the moment the channel opens: a late joiner or a reconnect sees the page at once);
- `pointer`: unordered, never retransmitted: a laser-pointer move is worthless when stale,
  and a lost one must not hold back the next. Hiding the pointer goes on `events`: it is
  state, and a lost hide would leave the dot on the page.

The signalling WebSocket carries these events only as the fallback, before the channels are
open or if they never open (a network that lets the socket through but not the SCTP).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.exceptions import InvalidStateError

from .protocol import VERSION

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelSpec:
    label: str
    ordered: bool
    max_retransmits: int | None  # None: reliable


EVENTS = ChannelSpec("events", ordered=True, max_retransmits=None)
POINTER = ChannelSpec("pointer", ordered=False, max_retransmits=0)
CHANNELS = (EVENTS, POINTER)
# Messages whose moves go on the pointer channel; everything else goes on `events`.
POINTER_MESSAGES = frozenset({"slide_pointer"})
# Whole states (a page turn, a deck, a clear, the state on opening) also go as a copy on the
# pointer channel: aiortc's SCTP resends a lost message only after its retransmission timeout
# (at least 1 s; a lone message has no later ones to trigger a fast retransmit), so on a
# rural link losing 3% one page turn in ~33 would wait that long. The copy is a few hundred
# bytes; whichever arrives first is shown, the other has the same `seq` and is dropped. Only
# a state may be copied: it stands alone, a stroke overtaking an earlier one would drop it.
# And only a small one: a copy in many fragments is lost when any one of them is.
COPIED_TO_POINTER = frozenset({"slides_state"})
COPY_MAX_BYTES = 1000  # one SCTP packet


def spec_for(message: dict[str, Any]) -> ChannelSpec:
    """A pointer move: the unreliable channel; a hidden pointer (x null) and the rest: the
    reliable one."""
    if message.get("type") in POINTER_MESSAGES and message.get("x") is not None:
        return POINTER
    return EVENTS


OnOpen = Callable[[str], None]
OnMessage = Callable[[str, str | bytes], None]


class EventChannels:
    """The two channels of one subscribe connection. Callbacks run in aiortc's callbacks:
    they only hand over (to the session's inbox)."""

    def __init__(self, pc: RTCPeerConnection, on_open: OnOpen, on_message: OnMessage) -> None:
        self._channels: dict[str, RTCDataChannel] = {}
        self.sent = {spec.label: 0 for spec in CHANNELS}  # messages, for stats and tests
        for spec in CHANNELS:
            channel = pc.createDataChannel(
                spec.label, ordered=spec.ordered, maxRetransmits=spec.max_retransmits
            )
            self._channels[spec.label] = channel
            channel.on("open", lambda label=spec.label: on_open(label))
            channel.on("message", lambda data, label=spec.label: on_message(label, data))

    def is_open(self, label: str = EVENTS.label) -> bool:
        return self._channels[label].readyState == "open"

    def send(self, message: dict[str, Any]) -> bool:
        """Send on the message's channel; False if it is not open or the message is larger
        than the peer takes on a channel (256 KiB in browsers: a page full of ink can be):
        the caller falls back to the socket."""
        kind = message.get("type", "")
        data = json.dumps({"v": VERSION, **message}, ensure_ascii=False)
        if not self._send(spec_for(message).label, data):
            return False
        if kind in COPIED_TO_POINTER and len(data.encode()) <= COPY_MAX_BYTES:
            self._send(POINTER.label, data)
        return True

    def _send(self, label: str, data: str) -> bool:
        channel = self._channels[label]
        if channel.readyState != "open":
            return False
        try:
            channel.send(data)
        except InvalidStateError:  # closed between the check and the send
            return False
        except ValueError as exc:  # above the peer's a=max-message-size
            log.info("data channel %s: %s", label, exc)
            return False
        self.sent[label] += 1
        return True
