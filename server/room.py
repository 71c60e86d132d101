"""Rooms and who is in them. A room holds participants and their sources; it decides nothing
about media itself: it tells each participant's session to resync when the picture changes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from media.publication import Publication
from media.source import Source

from .roles import GRANTS, HOST_ROLES, may_see, next_host
from .slides.board import Boards, SlideBoard
from .tokens import Identity

if TYPE_CHECKING:
    from .session import Session


@dataclass(eq=False)
class Participant:
    identity: Identity
    session: Session
    publications: dict[str, Publication] = field(default_factory=dict)  # camera, mic, screen

    @property
    def id(self) -> str:
        return self.identity.id

    @property
    def visible(self) -> bool:
        return GRANTS[self.identity.role].visible

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {
            "id": self.id,
            "name": self.identity.name,
            "role": self.identity.role,
            "sources": sorted(self.publications),
        }
        if self.identity.campus:
            info["campus"] = self.identity.campus
        return info


class RoomObserver(Protocol):
    """Told what happens in rooms (recording, records); must not raise."""

    def participant_joined(self, room: Room, participant: Participant) -> None: ...

    def participant_left(self, room: Room, participant: Participant) -> None: ...

    def media_changed(self, room: Room) -> None: ...

    def room_closed(self, room: Room) -> None: ...


class Room:
    def __init__(
        self,
        room_id: str,
        title: str,
        ladder: bool = True,
        observers: list[RoomObserver] | None = None,
        boards: Boards | None = None,
    ) -> None:
        self.id = room_id
        self.observers = observers if observers is not None else []
        self.ladder = ladder  # server-made lower layers for single-layer cameras
        self.title = title
        self.participants: dict[str, Participant] = {}
        self.called_on: str | None = None
        self.hands: list[str] = []
        self.muted: set[str] = set()
        self.host: str | None = None  # who gives the floor, mutes and may hand over
        self._host_handed = False  # the host got the role from a person, not by arriving
        self.slides: SlideBoard = (boards or Boards(None, None))(room_id, self.broadcast_event)

    def close(self) -> None:
        self.slides.close()

    # -- membership -------------------------------------------------------------------------

    def join(self, participant: Participant) -> Participant | None:
        """Add a participant; returns the one it replaces (same id: a reload or reconnect)."""
        old = self.participants.get(participant.id)
        if old is not None:
            self._drop_sources(old)
        self.participants[participant.id] = participant
        for observer in self.observers:
            if old is not None:
                observer.participant_left(self, old)
            observer.participant_joined(self, participant)
        if old is None and participant.visible:
            self.broadcast(
                {"type": "participant_joined", "participant": participant.describe()},
                exclude=participant,
            )
        if self._takes_host(participant):
            self.host, self._host_handed = participant.id, False
            self.broadcast_state(exclude=participant)  # the joiner reads it in `joined`
        self.resync_all()
        return old

    def _takes_host(self, participant: Participant) -> bool:
        """Nobody hosts: the first teacher or member to arrive does. The host school's teacher
        arriving takes over from a member who got the role only by being early or staying,
        never from one it was handed to."""
        role = participant.identity.role
        if role not in HOST_ROLES or self.host == participant.id:
            return False
        current = self.participants.get(self.host) if self.host else None
        if current is None:
            return True
        return role == "teacher" and current.identity.role != "teacher" and not self._host_handed

    def leave(self, participant: Participant) -> None:
        if self.participants.get(participant.id) is not participant:
            return  # already replaced by a newer session of the same participant
        del self.participants[participant.id]
        self._drop_sources(participant)
        for observer in self.observers:
            observer.participant_left(self, participant)
            observer.media_changed(self)
        changed = False
        if self.called_on == participant.id:
            self.called_on, changed = None, True
        if participant.id in self.hands:
            self.hands.remove(participant.id)
            changed = True
        if self.host == participant.id:  # the host left: hand over by the rule in roles.py
            present = [(p.id, p.identity.role) for p in self.participants.values()]
            self.host, self._host_handed, changed = next_host(present), False, True
        if participant.visible:
            self.broadcast({"type": "participant_left", "participant": participant.describe()})
        if changed:
            self.broadcast_state()
        self.resync_all()

    @property
    def empty(self) -> bool:
        return not self.participants

    def visible_participants(self) -> list[dict[str, Any]]:
        return [p.describe() for p in self.participants.values() if p.visible]

    # -- media ------------------------------------------------------------------------------

    def add_layer(self, participant: Participant, name: str, layer: str, source: Source) -> None:
        publication = participant.publications.get(name)
        if publication is None:
            # Server-made layers for the teacher's camera only: class uplinks are small already.
            ladder = self.ladder and participant.identity.role == "teacher"
            publication = Publication(participant.id, name, source.kind, ladder)
            participant.publications[name] = publication
        old = publication.set_layer(layer, source)
        if old is not None:
            old.close()
        self._publications_changed(participant)

    def remove_layer(self, participant: Participant, name: str, layer: str) -> None:
        publication = participant.publications.get(name)
        if publication is None:
            return
        source = publication.remove_layer(layer)
        if source is not None:
            source.close()
        if not publication.published_layers():
            publication.close()
            del participant.publications[name]
        self._publications_changed(participant)

    def _publications_changed(self, participant: Participant) -> None:
        for observer in self.observers:
            observer.media_changed(self)
        self._announce(participant)
        self.resync_all()

    def _drop_sources(self, participant: Participant) -> None:
        for publication in participant.publications.values():
            publication.close()
        participant.publications.clear()

    def _announce(self, participant: Participant) -> None:
        if participant.visible:
            self.broadcast(
                {"type": "participant_updated", "participant": participant.describe()},
                exclude=participant,
            )

    def wanted_publications(self, viewer: Participant) -> list[Publication]:
        muted = frozenset(self.muted)
        return [
            publication
            for owner in self.participants.values()
            for publication in owner.publications.values()
            if publication.layers
            and may_see(
                viewer.identity.role,
                viewer.id,
                owner.identity.role,
                owner.id,
                publication.name,
                self.called_on,
                muted,
            )
        ]

    def resync_all(self) -> None:
        for participant in self.participants.values():
            participant.session.post_resync()

    # -- lesson control ---------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "called_on": self.called_on,
            "hands": list(self.hands),
            "muted": sorted(self.muted),
            "host": self.host,
        }

    def hand_over(self, participant_id: str) -> None:
        """The host gives the role to another participant (checked by the session)."""
        self.host, self._host_handed = participant_id, True
        if participant_id in self.hands:
            self.hands.remove(participant_id)
        self.broadcast_state()

    def set_called_on(self, participant_id: str | None) -> None:
        self.called_on = participant_id
        if participant_id in self.hands:
            self.hands.remove(participant_id)
        self.broadcast_state()
        self.resync_all()

    def set_hand(self, participant_id: str, raised: bool) -> None:
        if raised and participant_id not in self.hands:
            self.hands.append(participant_id)
        elif not raised and participant_id in self.hands:
            self.hands.remove(participant_id)
        self.broadcast_state()

    def set_muted(self, participant_id: str, muted: bool) -> None:
        (self.muted.add if muted else self.muted.discard)(participant_id)
        target = self.participants.get(participant_id)
        if target is not None:
            target.session.post_send({"type": "muted", "muted": muted})
        self.broadcast_state()
        self.resync_all()

    def broadcast_state(self, exclude: Participant | None = None) -> None:
        self.broadcast({"type": "state", "state": self.state()}, exclude)

    def broadcast_event(self, message: dict[str, Any]) -> None:
        """A live lesson event (slides) to everyone: over their data channels."""
        for participant in self.participants.values():
            participant.session.post_event(message)

    def broadcast(self, message: dict[str, Any], exclude: Participant | None = None) -> None:
        for participant in self.participants.values():
            if participant is not exclude:
                participant.session.post_send(message)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "participants": [
                {**p.describe(), "visible": p.visible, "link": p.session.last_health}
                for p in self.participants.values()
            ],
            "state": self.state(),
        }


class RoomRegistry:
    """The rooms of this node, created on demand and dropped when the last one leaves."""

    def __init__(
        self,
        titles: dict[str, str] | None = None,
        ladder: bool = True,
        boards: Boards | None = None,
    ) -> None:
        self._titles = titles or {}
        self._ladder = ladder
        self._boards = boards  # each room's slides: the deck store and the lessons' records
        self.rooms: dict[str, Room] = {}
        self.observers: list[RoomObserver] = []  # shared with every room
        # Asked in turn for the title of a room the configured titles do not name (the
        # timetable names its lessons' rooms).
        self.namers: list[Callable[[str], str | None]] = []

    def get(self, room_id: str) -> Room | None:
        return self.rooms.get(room_id)

    def open(self, room_id: str) -> Room:
        room = self.rooms.get(room_id)
        if room is None:
            title = self._titles.get(room_id) or self._name(room_id)
            room = self.rooms[room_id] = Room(
                room_id, title, self._ladder, self.observers, self._boards
            )
        return room

    def _name(self, room_id: str) -> str:
        for namer in self.namers:
            title = namer(room_id)
            if title:
                return title
        return room_id

    def discard_if_empty(self, room: Room) -> None:
        if room.empty and self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            room.close()
            for observer in self.observers:
                observer.room_closed(room)

    @property
    def participant_count(self) -> int:
        return sum(len(r.participants) for r in self.rooms.values())
