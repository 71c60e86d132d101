"""One participant's connection: its WebSocket, publish and subscribe peer connections.

One loop per client instead of locks: everything that touches this participant's peer
connections or socket goes through `inbox` and runs in `run()`, one event at a time.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from aiohttp import web
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from media import rtc_internals
from media.downtrack import DownTrack
from media.publication import Publication
from media.source import Source
from media.stats import ForwardStats
from media.subscriber_link import SubscriberLink

from . import meeting
from .event_channels import EVENTS, EventChannels
from .protocol import VERSION, ProtocolError, error, parse, split_track
from .roles import CONTROL_MESSAGES, GRANTS, HOST_MESSAGES, HOST_ROLES, SLIDE_MESSAGES
from .room import Participant, Room, RoomRegistry
from .tokens import Identity

if TYPE_CHECKING:
    from aiortc.mediastreams import MediaStreamTrack

log = logging.getLogger(__name__)

NEGOTIATION_TIMEOUT = 20.0  # a subscriber that never answers an offer is gone
# What a participant who may host, but does not now, is told (Chinese, then English detail).
NOT_HOST = {
    "call_on": "只有主持人可以请人发言。",
    "mute": "只有主持人可以静音他人。",
    "host": "只有主持人可以移交主持人。",
}


@dataclass(eq=False)
class Slot:
    """One sending transceiver on the subscribe connection, re-used as sources come and go."""

    transceiver: RTCRtpTransceiver
    downtrack: DownTrack
    mime_type: str | None


class Session:
    def __init__(
        self,
        ws: web.WebSocketResponse,
        identity: Identity,
        rooms: RoomRegistry,
        stats: ForwardStats,
        rtc_config: RTCConfiguration,
        adaptive: bool = True,
    ) -> None:
        self.ws = ws
        self.identity = identity
        self._rooms = rooms
        self._stats = stats
        self._rtc_config = rtc_config
        self.inbox: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.room: Room | None = None
        self.participant = Participant(identity, self)
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.channels: EventChannels | None = None  # on the subscribe connection
        self._publish_remb = rtc_internals.ConnectionRemb()
        self.slots: list[Slot] = []
        self._linked: set[str] = set()  # mids the link steers
        self._watched: object | None = None  # the transport whose coming up we wait for
        self.link = SubscriberLink(adaptive, identity.role)
        self._link_task: asyncio.Task[None] | None = None
        self.last_health: dict[str, Any] | None = None
        self._offer_outstanding = False
        self._offer_serial = 0
        self._dirty = False
        self._closed = False
        self._timeout: asyncio.TimerHandle | None = None

    # -- posting from elsewhere (room, socket reader) -----------------------------------------

    def post_send(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(("send", message))

    def post_event(self, message: dict[str, Any]) -> None:
        """A live lesson event (slides): over the data channel, see `_deliver`."""
        self.inbox.put_nowait(("event", message))

    def post_resync(self) -> None:
        self.inbox.put_nowait(("resync", None))

    def post_message(self, message: dict[str, Any]) -> None:
        self.inbox.put_nowait(("message", message))

    def post_close(self, reason: str) -> None:
        self.inbox.put_nowait(("close", reason))

    # -- the loop -----------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            while not self._closed:
                event, payload = await self.inbox.get()
                try:
                    await self._handle(event, payload)
                except ProtocolError as exc:
                    await self._send(exc.to_message())
                except Exception:  # one bad event must not take the participant down
                    log.exception("session %s: %s failed", self.identity.id, event)
                    await self._send(error("internal", "服务器内部错误，请稍后重试。", event))
        finally:
            await self._cleanup()

    async def _handle(self, event: str, payload: Any) -> None:
        if event == "send":
            await self._send(payload)
        elif event == "resync":
            if self.room is not None:
                await self._resync()
        elif event == "message":
            await self._on_message(payload)
        elif event == "event":
            await self._deliver(payload)
        elif event == "channel_open":
            if payload == EVENTS.label and self.room is not None:
                # the whole picture at once on the primary path: a late join, a reconnect
                await self._deliver(self.room.slides.state_message())
        elif event == "channel_message":
            await self._on_channel_message(*payload)
        elif event == "close":
            if payload:
                await self._send({"type": "ended", "reason": payload})
            self._closed = True
        elif event == "timeout":
            if self._offer_outstanding and payload == self._offer_serial:
                await self._send(
                    error("wrong_order", "连接协商超时。", "no subscribe_answer in time")
                )
                self._closed = True
        elif event == "publisher_failed":
            if self.room is not None:
                for name, publication in list(self.participant.publications.items()):
                    for layer in publication.published_layers():
                        self.room.remove_layer(self.participant, name, layer)

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_json({"v": VERSION, **message})
        except (ConnectionError, RuntimeError):
            self._closed = True

    async def _deliver(self, message: dict[str, Any]) -> None:
        """Lesson events go over the data channels (primary path); the signalling socket
        carries them only while the channels are not open (yet)."""
        if self.channels is not None and self.channels.send(message):
            return
        await self._send(message)

    # -- messages -----------------------------------------------------------------------------

    def _check_allowed(self, kind: str) -> None:
        """The role's grant and the host's prerogatives (server/roles.py), on every path."""
        if self.room is None:
            raise ProtocolError("wrong_order", "请先加入课堂。", f"{kind} before join")
        grant = GRANTS[self.identity.role]
        if kind in CONTROL_MESSAGES and kind not in grant.messages:
            raise ProtocolError("not_allowed", "当前身份无此权限。", f"role may not {kind}")
        if kind in HOST_MESSAGES and self.room.host != self.identity.id:
            raise ProtocolError(
                "not_host", NOT_HOST[kind], f"{kind}: only the host ({self.room.host}) may"
            )

    async def _on_channel_message(self, label: str, data: str | bytes) -> None:
        """A message on a data channel: slide events only, validated as on the socket.
        Errors go back on the reliable channel; the session carries on."""
        try:
            message = parse(data)
            kind = message["type"]
            if kind not in SLIDE_MESSAGES:
                raise ProtocolError(
                    "bad_message",
                    "数据通道只传课件消息。",
                    f"{kind} on data channel {label!r}: only slide_*, the rest on the socket",
                )
            self._check_allowed(kind)
            assert self.room is not None
            self.room.slides.apply(kind, message, self.identity.id)
        except ProtocolError as exc:
            await self._deliver(exc.to_message())

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "join":
            await self._join()
            return
        if kind == "ping":
            await self._send({"type": "pong"})
            return
        self._check_allowed(kind)
        assert self.room is not None
        if kind in SLIDE_MESSAGES:  # the fallback path: browsers send these on the channel
            self.room.slides.apply(kind, message, self.identity.id)
        elif kind == "publish":
            await self._publish(message)
        elif kind == "subscribe_answer":
            await self._on_subscribe_answer(message["sdp"])
        elif kind == "call_on":
            target = message["participant"]
            if target is not None and not self._is_other(target):
                raise ProtocolError(
                    "bad_message", "找不到该班级或老师。", f"no participant {target}"
                )
            self.room.set_called_on(target)
        elif kind == "mute":
            if not self._is_other(message["participant"]):
                raise ProtocolError("bad_message", "找不到该班级或老师。", "no such participant")
            self.room.set_muted(message["participant"], message["muted"])
        elif kind == "host":
            self._hand_over(message["participant"])
        elif kind == "hand":
            self.room.set_hand(self.identity.id, message["raised"])
        elif kind == "keyframe":
            for slot in self.slots:
                if slot.transceiver.mid == message["mid"]:
                    slot.downtrack.request_keyframe()
        elif kind == "leave":
            self._closed = True

    def _is_other(self, participant_id: str) -> bool:
        """Another visible participant: a class, a meeting member, a teacher (not oneself)."""
        assert self.room is not None
        target = self.room.participants.get(participant_id)
        return target is not None and target.visible and participant_id != self.identity.id

    def _hand_over(self, participant_id: str) -> None:
        assert self.room is not None
        target = self.room.participants.get(participant_id)
        if participant_id == self.identity.id:
            raise ProtocolError("bad_message", "您已经是主持人。", "hand over to oneself")
        if target is None or target.identity.role not in HOST_ROLES:
            raise ProtocolError(
                "bad_message",
                "只能把主持人移交给在场的老师。",
                f"{participant_id} is not a teacher or member present",
            )
        self.room.hand_over(participant_id)

    async def _join(self) -> None:
        if self.room is not None:
            raise ProtocolError("wrong_order", "已经加入课堂。", "join sent twice")
        room = self._rooms.get(self.identity.room)
        if room is None:
            if not GRANTS[self.identity.role].visible:
                # an observer inspects live rooms; it does not open new ones
                raise ProtocolError(
                    "unknown_room", "该课堂当前没有在上课。", f"room {self.identity.room} not live"
                )
            room = self._rooms.open(self.identity.room)
        meeting.check_capacity(room, self.identity)
        self.room = room
        old = room.join(self.participant)
        if old is not None:
            old.session.post_close("replaced")
        await self._send(
            {
                "type": "joined",
                "you": self.participant.describe(),
                "room": {"id": room.id, "title": room.title},
                "participants": room.visible_participants(),
                "state": room.state(),
            }
        )
        # The page as it is now, with its ink: on the socket, as the channels are not open
        # yet; they send it again when they open.
        await self._deliver(room.slides.state_message())
        self.subscribe_pc = pc = self._new_pc()
        # The data channels give the first offer something to negotiate before any track
        # exists, carry the lesson's events, and their transport is the one BUNDLE keeps.
        self.channels = EventChannels(
            pc,
            on_open=lambda label: self.inbox.put_nowait(("channel_open", label)),
            on_message=lambda label, data: self.inbox.put_nowait(
                ("channel_message", (label, data))
            ),
        )

        self._dirty = True
        await self._resync()

    # -- publishing ---------------------------------------------------------------------------

    async def _publish(self, message: dict[str, Any]) -> None:
        assert self.room is not None
        allowed = GRANTS[self.identity.role].publishes
        declared: dict[str, tuple[str, str]] = {
            mid: split_track(value)  # type: ignore[misc] - validated by the protocol
            for mid, value in message["tracks"].items()
        }
        refused = sorted({name for name, _ in declared.values()} - allowed)
        if refused:
            raise ProtocolError(
                "not_allowed", "当前身份不能发布这些内容。", f"role may not publish {refused}"
            )
        if self.publish_pc is None:
            self.publish_pc = self._new_pc()
            self._publish_remb = rtc_internals.ConnectionRemb()
            pc = self.publish_pc

            @pc.on("connectionstatechange")
            def _on_state() -> None:
                if pc.connectionState in ("failed", "closed") and pc is self.publish_pc:
                    self.inbox.put_nowait(("publisher_failed", None))

        pc = self.publish_pc
        new_tracks: list[MediaStreamTrack] = []
        collect = new_tracks.append
        pc.on("track", collect)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        except Exception as exc:
            raise ProtocolError("bad_sdp", "媒体协商失败。", f"bad offer: {exc}") from exc
        finally:
            pc.remove_listener("track", collect)
        added: list[tuple[RTCRtpTransceiver, str, str, Source]] = []
        for track in new_tracks:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            if transceiver.mid not in declared:
                continue  # undeclared track: received, never forwarded
            name, layer = declared[transceiver.mid]
            source = self._make_source(transceiver, f"{name}/{layer}", track.kind)
            added.append((transceiver, name, layer, source))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        await self._send({"type": "publish_answer", "sdp": pc.localDescription.sdp})
        for transceiver, name, layer, source in added:
            codec = rtc_internals.negotiated_codec(transceiver)
            source.mime_type = codec.mimeType if codec else None
            self.room.add_layer(self.participant, name, layer, source)
        still = set(declared.values())
        for name, publication in list(self.participant.publications.items()):
            for layer in publication.published_layers():
                if (name, layer) not in still:
                    self.room.remove_layer(self.participant, name, layer)

    def _make_source(self, transceiver: RTCRtpTransceiver, name: str, kind: str) -> Source:
        hook: rtc_internals.ReceiverHook | None = None

        async def send_pli() -> None:
            if hook is not None:
                await hook.send_pli()

        source = Source(
            f"{self.identity.id}:{name}", self.identity.id, name, kind, send_pli, self._stats
        )
        hook = rtc_internals.ReceiverHook(
            transceiver.receiver,
            kind,
            source.push,
            source.request_keyframe,
            remb=self._publish_remb,  # a camera in three layers: one cap for all of them
        )
        return source

    # -- subscribing --------------------------------------------------------------------------

    async def _resync(self) -> None:
        """Bind the subscribe connection's slots to the publications this participant sees."""
        if self.room is None or self.subscribe_pc is None:
            return
        wanted = {p.id: p for p in self.room.wanted_publications(self.participant)}
        for slot in self.slots:
            bound = slot.downtrack.publication
            if bound is not None and wanted.get(bound.id) is not bound:
                slot.downtrack.bind(None)
                slot.transceiver.direction = "inactive"
                self._dirty = True
            elif bound is not None:
                slot.downtrack.refresh()  # its layers may have changed
        bound_ids = {s.downtrack.publication.id for s in self.slots if s.downtrack.publication}
        for publication_id, publication in wanted.items():
            if publication_id in bound_ids:
                continue
            slot = next(
                (
                    s
                    for s in self.slots
                    if s.downtrack.publication is None
                    and s.downtrack.kind == publication.kind
                    and s.mime_type == publication.mime_type
                ),
                None,
            ) or self._new_slot(publication)
            slot.downtrack.bind(publication)
            slot.transceiver.direction = "sendonly"
            self._dirty = True
        if self._dirty and self._may_offer():
            await self._offer()

    def _watch_transport(self) -> None:
        """Resync once the connection's (bundled) transport is up, to offer what changed
        while it was connecting. The pc's own state cannot tell: transceivers added since
        the last offer count as not connected."""
        pc = self.subscribe_pc
        if pc is None or pc.sctp is None or pc.sctp.transport is self._watched:
            return
        transport = self._watched = pc.sctp.transport

        @transport.on("statechange")
        def _on_state() -> None:
            if transport.state == "connected":
                self.post_resync()

    def _may_offer(self) -> bool:
        """One offer at a time, and none while the first connection is still coming up:
        aiortc never starts tracks negotiated before its DTLS transport is connected."""
        pc = self.subscribe_pc
        if self._offer_outstanding or pc is None or pc.sctp is None:
            return False
        return self._offer_serial == 0 or pc.sctp.transport.state == "connected"

    def _new_slot(self, publication: Publication) -> Slot:
        assert self.subscribe_pc is not None
        downtrack = DownTrack(publication.kind, self._stats)
        transceiver = self.subscribe_pc.addTransceiver(downtrack, direction="sendonly")
        if publication.mime_type:
            # The publisher's codec (we forward, never transcode); for Opus, redundant
            # audio first: a subscriber that can take RED gets every frame twice.
            wanted = [publication.mime_type.lower(), f"{publication.kind}/rtx"]
            if wanted[0] == "audio/opus":
                wanted.insert(0, "audio/red")
            capabilities = RTCRtpSender.getCapabilities(publication.kind).codecs
            transceiver.setCodecPreferences(
                sorted(
                    (c for c in capabilities if c.mimeType.lower() in wanted),
                    key=lambda c: wanted.index(c.mimeType.lower()),
                )
            )
        rtc_internals.on_keyframe_request(transceiver.sender, downtrack.request_keyframe)
        slot = Slot(transceiver, downtrack, publication.mime_type)
        self.slots.append(slot)
        return slot

    def _describe(self, slot: Slot) -> tuple[str, bool]:
        """(publisher's role, called on) of what a slot carries, for the allocator."""
        publication = slot.downtrack.publication
        if publication is None or self.room is None:
            return "", False
        owner = self.room.participants.get(publication.participant_id)
        called_on = self.room.called_on == publication.participant_id
        return (owner.identity.role if owner else ""), called_on

    async def _offer(self) -> None:
        assert self.subscribe_pc is not None and self.room is not None
        pc = self.subscribe_pc
        offer = await pc.createOffer()
        await pc.setLocalDescription(offer)
        tracks: dict[str, dict[str, Any]] = {}
        for slot in self.slots:
            publication = slot.downtrack.publication
            mid = slot.transceiver.mid
            if mid is None:
                continue
            if mid not in self._linked:
                self._linked.add(mid)
                self.link.add(mid, slot.transceiver, slot.downtrack, partial(self._describe, slot))
            if publication is None:
                continue
            owner = self.room.participants.get(publication.participant_id)
            tracks[mid] = {
                "participant": publication.participant_id,
                "name": owner.identity.name if owner else "",
                "role": owner.identity.role if owner else "",
                "source": publication.name,
                "kind": publication.kind,
                "layers": publication.layer_names(),
            }
        self._dirty = False
        self._offer_outstanding = True
        self._offer_serial += 1
        loop = asyncio.get_running_loop()
        serial = self._offer_serial
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = loop.call_later(
            NEGOTIATION_TIMEOUT, self.inbox.put_nowait, ("timeout", serial)
        )
        await self._send(
            {"type": "subscribe_offer", "sdp": pc.localDescription.sdp, "tracks": tracks}
        )

    async def _on_subscribe_answer(self, sdp: str) -> None:
        if not self._offer_outstanding or self.subscribe_pc is None:
            raise ProtocolError(
                "wrong_order", "没有待回复的协商。", "subscribe_answer without offer"
            )
        try:
            await self.subscribe_pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
        except Exception as exc:
            # the offer stays outstanding: a corrected answer may still come
            raise ProtocolError("bad_sdp", "媒体协商失败。", f"bad answer: {exc}") from exc
        self._offer_outstanding = False
        rtc_internals.rebundle(self.subscribe_pc)
        self._watch_transport()
        self.link.after_negotiation()
        if self._link_task is None:
            self._link_task = asyncio.ensure_future(self.link.run(self._on_link_health))
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        if self._dirty and self._may_offer():
            await self._offer()

    def _on_link_health(self, health: dict[str, Any]) -> None:
        self.last_health = health
        self.post_send({"type": "link", **health})

    # -- helpers ------------------------------------------------------------------------------

    def _new_pc(self) -> RTCPeerConnection:
        return RTCPeerConnection(configuration=self._rtc_config)

    async def _cleanup(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if self._link_task is not None:
            self._link_task.cancel()
        self.link.close()
        for slot in self.slots:
            slot.downtrack.bind(None)
        if self.room is not None:
            self.room.leave(self.participant)
            self._rooms.discard_if_empty(self.room)
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if not self.ws.closed:
            await self.ws.close()

    def sent_counts(self) -> tuple[int, int]:
        packets = octets = 0
        for slot in self.slots:
            p, o = rtc_internals.sent_counts(slot.transceiver.sender)
            packets += p
            octets += o
        return packets, octets
