"""A headless Tongke participant (docs/signalling.md) for the CLI, tests and benchmarks.

`Participant` speaks the signalling protocol over aiohttp's WebSocket client and runs the two
aiortc peer connections: publish (we offer) and subscribe (the server offers, we answer). The
lesson's live events (slides) come and go on the subscribe connection's data channels, as in
the browser (server/event_channels.py); the socket carries them only until those are open.
`run_publish` and `run_watch` are what `tongke publish` and `tongke watch` run.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import av
from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamTrack

from media import rtc_internals
from media.frames import EncodedFrame
from media.synthetic import SendLog, SyntheticVideoTrack, ToneAudioTrack, read_frame_id

from .event_channels import CHANNELS, EVENTS, spec_for

log = logging.getLogger(__name__)

VERSION = 1
PLI_MIN_INTERVAL = 0.5  # our own keyframe requests, at most this often per track
KEYFRAME_WATCHDOG = 0.25  # seconds between checks for silent video tracks
CONNECT_TIMEOUT = 10.0  # longest wait for the subscribe connection before a renegotiation
KEYFRAME_TIMEOUT = 1.0  # a bound video track silent this long gets a keyframe request


class SignallingError(Exception):
    """An `error` message from the server (or the socket closing under us)."""

    def __init__(self, code: str, message: str = "", detail: str = "") -> None:
        super().__init__(f"{code}: {detail or message}")
        self.code, self.message, self.detail = code, message, detail


@dataclass(eq=False)
class RemoteTrack:
    """A track we receive, as the last subscribe_offer described it.

    The server re-uses transceivers as sources come and go, so one `track` object may later
    carry another (participant, source): watch `on_track_removed`.
    """

    mid: str
    participant: str
    name: str
    role: str
    source: str
    kind: str
    transceiver: RTCRtpTransceiver

    @property
    def receiver(self) -> RTCRtpReceiver:
        return self.transceiver.receiver

    @property
    def key(self) -> tuple[str, str]:
        return (self.participant, self.source)

    @property
    def track(self) -> MediaStreamTrack:
        """Decoded frames (stock aiortc). Empty in encoded mode: use on_encoded_frame."""
        return self.receiver.track


TrackCallback = Callable[[RemoteTrack], None]
EncodedCallback = Callable[[RemoteTrack, EncodedFrame], None]
EventCallback = Callable[[dict[str, Any], str], None]  # (message, "channel" | "socket")
SLIDE_EVENTS = frozenset({"slides_state", "slide_ink", "slide_pointer"})


class EventOrder:
    """Which slide events are news (the rule web/js/signalling.js follows too). The server
    numbers them (`seq`); they come on two channels, one unordered, and on the socket until
    the channels open, so an older one may arrive after a newer, or the same one twice (the
    state on joining: on the socket, again when the channel opens). A state replaces
    everything up to its number, a stroke adds to it, a pointer move older than the newest
    state or move is stale."""

    def __init__(self) -> None:
        self.ordered = -1  # the newest state or stroke applied
        self.state = -1  # the newest state applied
        self.pointer = -1

    def fresh(self, message: dict[str, Any]) -> bool:
        seq = message.get("seq")
        if not isinstance(seq, int):
            return True  # an unnumbered message: nothing to compare
        if message.get("type") == "slide_pointer":
            if seq <= max(self.pointer, self.state):
                return False
            self.pointer = seq
            return True
        if seq <= self.ordered:  # the same number: the same state, seen already
            return False
        self.ordered = seq
        if message.get("type") == "slides_state":
            self.state = seq
        return True


def ws_url(url: str, token: str) -> str:
    """The signalling URL from a base URL (http(s)://host:port) or a ws(s)://…/ws URL."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, urlencode({"token": token}), ""))


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Participant:
    """One participant: a signalling socket, a publish and a subscribe peer connection.

    With `encoded=True` received media is never decoded by aiortc: complete encoded frames
    go to `on_encoded_frame` (cheap watchers, byte and keyframe counts); otherwise read decoded
    frames from `RemoteTrack.track` (aiortc queues them without bound if nobody reads).
    `keyframe_watchdog` asks for a keyframe when a video track shows nothing (see
    `_keyframe_watchdog`); turn it off to test that the server copes on its own.
    """

    def __init__(
        self,
        *,
        encoded: bool = False,
        keyframe_watchdog: bool = True,
        rtc_config: RTCConfiguration | None = None,
    ) -> None:
        self.encoded = encoded
        self.keyframe_watchdog = keyframe_watchdog
        self.keyframe_requests = 0  # sent by the watchdog over signalling
        self.rtc_config = rtc_config or RTCConfiguration(iceServers=[])  # no public STUN
        self.you: dict[str, Any] | None = None
        self.room: dict[str, Any] | None = None
        self.participants: dict[str, dict[str, Any]] = {}
        self.state: dict[str, Any] = {}
        self.muted = False
        self.remote: dict[tuple[str, str], RemoteTrack] = {}
        self.on_track: list[TrackCallback] = []
        self.on_track_removed: list[TrackCallback] = []
        self.on_message: list[Callable[[dict[str, Any]], None]] = []
        self.on_encoded_frame: list[EncodedCallback] = []
        # Slide events that are news, with the path they came by; on_message gets them too.
        self.on_event: list[EventCallback] = []
        self.events_received = {"channel": 0, "socket": 0}  # slide events, news or not
        self.last_state: dict[str, dict[str, Any]] = {}  # path: its latest slides_state
        self.channels: dict[str, RTCDataChannel] = {}  # label: the server's open channels
        self._event_order = EventOrder()
        self._channels_open = asyncio.Event()
        self.errors: list[dict[str, Any]] = []
        self.ended: str | None = None  # reason, once the server ended us or the socket closed
        self.closed = asyncio.Event()
        self.publish_pc: RTCPeerConnection | None = None
        self.subscribe_pc: RTCPeerConnection | None = None
        self.publish_transceivers: dict[str, RTCRtpTransceiver] = {}  # by source
        self._by_mid: dict[str, RemoteTrack] = {}
        self._hooks: dict[str, rtc_internals.ReceiverHook] = {}
        self._remb = rtc_internals.ConnectionRemb()
        self._last_pli: dict[str, float] = {}
        self._watchdog: asyncio.Task[None] | None = None
        self._offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answerer: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiters: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._track_changed = asyncio.Event()

    # -- connection ---------------------------------------------------------------------------

    async def connect(self, url: str, token: str) -> None:
        rtc_internals.enable_red()  # take the SFU's redundant audio where it offers it
        if is_loopback(url):
            # aioice skips 127.0.0.1; a one-machine server only offers loopback.
            rtc_internals.use_host_addresses(["127.0.0.1"])
        self._http = aiohttp.ClientSession()
        try:
            self._ws = await self._http.ws_connect(ws_url(url, token), heartbeat=15)
        except BaseException:
            await self._http.close()
            raise
        self._reader = asyncio.ensure_future(self._read())

    async def join(self, timeout: float = 10.0) -> dict[str, Any]:
        joined = await self._request({"type": "join"}, "joined", timeout)
        self.you, self.room = joined["you"], joined["room"]
        self.participants = {p["id"]: p for p in joined["participants"]}
        self.state = joined["state"]
        return joined

    async def send(self, message: dict[str, Any]) -> None:
        if self._ws is None or self._ws.closed:
            raise self._closed_error()
        try:
            await self._ws.send_json({"v": VERSION, **message})
        except ConnectionError as exc:  # aiohttp's reset errors derive from it
            raise self._closed_error() from exc

    async def send_event(self, message: dict[str, Any]) -> str:
        """A slide event: on its data channel when open (the primary path), else on the
        socket. Returns the path taken."""
        channel = self.channels.get(spec_for(message).label)
        if channel is not None and channel.readyState == "open":
            try:
                channel.send(json.dumps({"v": VERSION, **message}, ensure_ascii=False))
                return "channel"
            except (InvalidStateError, ValueError):  # closing, or above max-message-size
                pass
        await self.send(message)
        return "socket"

    async def send_raw_on_channel(self, data: str | bytes, label: str = EVENTS.label) -> None:
        """Anything at all on a data channel (tests of the server's validation)."""
        self.channels[label].send(data)

    async def wait_channels(self, timeout: float = 10.0) -> None:
        """Until the server's data channels are open."""
        await asyncio.wait_for(self._channels_open.wait(), timeout)

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            with contextlib.suppress(Exception):
                await self.send({"type": "leave"})
            await self._ws.close()
        for task in (self._reader, self._watchdog, self._answerer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()
        if self._http is not None:
            await self._http.close()
        self.ended = self.ended or "closed"
        self.closed.set()

    async def __aenter__(self) -> Participant:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self, tracks: dict[str, MediaStreamTrack], timeout: float = 20.0
    ) -> dict[str, RTCRtpTransceiver]:
        """(Re)publish: `tracks` maps source (camera, mic, screen) to a track; sources left
        out of a later call stop being published."""
        if self.publish_pc is None:
            self.publish_pc = RTCPeerConnection(configuration=self.rtc_config)
        pc = self.publish_pc
        if pc.remoteDescription is not None:
            await _settled(pc, CONNECT_TIMEOUT)  # see _on_subscribe_offer
        for source, track in tracks.items():
            transceiver = self.publish_transceivers.get(source)
            if transceiver is None or transceiver.kind != track.kind:
                transceiver = pc.addTransceiver(track, direction="sendonly")
                self.publish_transceivers[source] = transceiver
            else:
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
        for source in list(self.publish_transceivers):
            if source not in tracks:
                transceiver = self.publish_transceivers.pop(source)
                transceiver.sender.replaceTrack(None)
                transceiver.direction = "inactive"
        # aiortc gathers every candidate inside setLocalDescription: the SDP is complete.
        await pc.setLocalDescription(await pc.createOffer())
        declared = {t.mid: s for s, t in self.publish_transceivers.items() if t.mid is not None}
        answer = await self._request(
            {"type": "publish", "sdp": pc.localDescription.sdp, "tracks": declared},
            "publish_answer",
            timeout,
        )
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        return dict(self.publish_transceivers)

    # -- subscribing --------------------------------------------------------------------------

    async def wait_track(
        self,
        source: str,
        participant: str | None = None,
        timeout: float = 10.0,
    ) -> RemoteTrack:
        """The first received track of `source` (from `participant`, if given)."""

        async def find() -> RemoteTrack:
            while True:
                for remote in self.remote.values():
                    if remote.source == source and participant in (None, remote.participant):
                        return remote
                self._track_changed.clear()
                await self._track_changed.wait()

        return await asyncio.wait_for(find(), timeout)

    async def request_keyframe(self, remote: RemoteTrack) -> None:
        await self.send({"type": "keyframe", "mid": remote.mid})

    async def _answer_offers(self) -> None:
        while True:
            message = await self._offers.get()
            try:
                await self._on_subscribe_offer(message)
            except Exception:  # keep the session: the server times out an unanswered offer
                log.exception("subscribe_offer failed")

    async def _on_subscribe_offer(self, message: dict[str, Any]) -> None:
        if self.subscribe_pc is None:
            self.subscribe_pc = RTCPeerConnection(configuration=self.rtc_config)
            self._remb = rtc_internals.ConnectionRemb()  # one REMB per connection, as browsers
            self.subscribe_pc.on("datachannel", self._on_datachannel)
        pc = self.subscribe_pc
        if pc.remoteDescription is not None:
            # aiortc starts the senders and receivers of a renegotiation only if DTLS is
            # already up: m-lines negotiated while the first connection is still being set up
            # never carry media (aiortc 1.16.0). Answer once connected.
            await _settled(pc, CONNECT_TIMEOUT)
        await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        if self.encoded:
            # Before setLocalDescription: aiortc starts receivers when the answer is applied.
            for transceiver in pc.getTransceivers():
                if transceiver.mid is not None and transceiver.mid not in self._hooks:
                    self._hook(transceiver)
        await pc.setLocalDescription(await pc.createAnswer())
        rtc_internals.rebundle(pc)
        await self.send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})
        self._rebind(pc, message["tracks"])
        if self.keyframe_watchdog and self._watchdog is None:
            self._watchdog = asyncio.ensure_future(self._keyframe_watchdog())

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        label = channel.label
        if label not in {spec.label for spec in CHANNELS}:
            return
        self.channels[label] = channel

        @channel.on("message")
        def _on_message(data: str | bytes) -> None:
            try:
                message = json.loads(data)
            except ValueError:
                log.warning("not JSON on data channel %s: %.80r", label, data)
                return
            if isinstance(message, dict):
                self._received(message, "channel")

        if len(self.channels) == len(CHANNELS):
            self._channels_open.set()

    def _received(self, message: dict[str, Any], via: str) -> None:
        """A message from the server by either path."""
        kind = message.get("type")
        if kind in SLIDE_EVENTS:
            self.events_received[via] += 1
            if kind == "slides_state":
                self.last_state[via] = message
            if not self._event_order.fresh(message):
                return
            for event_callback in self.on_event:
                event_callback(message, via)
        self._dispatch(message)
        for callback in self.on_message:
            callback(message)

    def _rebind(self, pc: RTCPeerConnection, tracks: dict[str, dict[str, Any]]) -> None:
        transceivers = {t.mid: t for t in pc.getTransceivers() if t.mid is not None}
        for mid, old in list(self._by_mid.items()):
            info = tracks.get(mid)
            if info is None or (info["participant"], info["source"]) != old.key:
                del self._by_mid[mid]
                if self.remote.get(old.key) is old:
                    del self.remote[old.key]
                for callback in self.on_track_removed:
                    callback(old)
        for mid, info in tracks.items():
            if mid in self._by_mid or mid not in transceivers:
                continue
            remote = RemoteTrack(
                mid,
                info["participant"],
                info.get("name", ""),
                info.get("role", ""),
                info["source"],
                info["kind"],
                transceivers[mid],
            )
            self._by_mid[mid] = remote
            self.remote[remote.key] = remote
            for callback in self.on_track:
                callback(remote)
        self._track_changed.set()

    def _hook(self, transceiver: RTCRtpTransceiver) -> None:
        mid = transceiver.mid
        assert mid is not None

        def on_frame(frame: EncodedFrame) -> None:
            remote = self._by_mid.get(mid)
            if remote is not None:
                for callback in self.on_encoded_frame:
                    callback(remote, frame)

        def on_keyframe_needed() -> None:  # the assembler lost a frame or waits for a key
            self._request_pli(mid)

        hook = rtc_internals.ReceiverHook(
            transceiver.receiver, transceiver.kind, on_frame, on_keyframe_needed, remb=self._remb
        )
        self._hooks[mid] = hook

    async def _keyframe_watchdog(self) -> None:
        """Ask for a keyframe (by signalling) when a bound video track has received no packet
        for KEYFRAME_TIMEOUT: the SFU holds a subscriber back until a keyframe, and a request
        that got lost (or came before the publisher's first packet) would otherwise leave the
        track black for a whole keyframe interval. Browsers re-ask in the same way."""
        progress: dict[str, tuple[RemoteTrack, int, float]] = {}  # mid: (bound, packets, since)
        while True:
            await asyncio.sleep(KEYFRAME_WATCHDOG)
            now = time.monotonic()
            for mid, remote in list(self._by_mid.items()):
                if remote.kind != "video":
                    continue
                packets = rtc_internals.packets_received(remote.receiver)
                bound, seen, since = progress.get(mid, (None, -1, now))
                if bound is not remote or packets != seen:
                    progress[mid] = (remote, packets, now)
                elif now - since >= KEYFRAME_TIMEOUT:
                    progress[mid] = (remote, packets, now)  # ask again after as long
                    with contextlib.suppress(SignallingError):
                        await self.send({"type": "keyframe", "mid": mid})
                    self.keyframe_requests += 1

    def _request_pli(self, mid: str) -> None:
        now = time.monotonic()
        if now - self._last_pli.get(mid, -math.inf) >= PLI_MIN_INTERVAL:
            self._last_pli[mid] = now
            asyncio.ensure_future(self._hooks[mid].send_pli())

    # -- the socket ---------------------------------------------------------------------------

    async def _request(self, message: dict[str, Any], reply: str, timeout: float) -> dict:
        if self.closed.is_set():
            raise self._closed_error()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[reply] = waiter
        try:
            await self.send(message)
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._waiters.pop(reply, None)

    def _fail_waiters(self, exc: Exception) -> None:
        for waiter in self._waiters.values():
            if not waiter.done():
                waiter.set_exception(exc)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    message = json.loads(msg.data)
                except ValueError:
                    log.warning("not JSON from the server: %.80r", msg.data)
                    continue
                if isinstance(message, dict):
                    self._received(message, "socket")
        finally:
            if self.ended is None:
                refused = self._ws.close_code == 4401 and self.errors
                self.ended = self.errors[-1]["code"] if refused else "disconnected"
            self._fail_waiters(self._closed_error())
            self.closed.set()

    def _closed_error(self) -> SignallingError:
        last = self.errors[-1] if self.errors else {}
        detail = f"socket closed ({self._ws.close_code if self._ws else None})"
        return SignallingError(self.ended or "closed", last.get("message", ""), detail)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        waiter = self._waiters.get(kind or "")
        if waiter is not None and not waiter.done():
            waiter.set_result(message)
        if kind == "subscribe_offer":
            # Answered in order by one task, so waiting there never holds up other replies.
            self._offers.put_nowait(message)
            if self._answerer is None:
                self._answerer = asyncio.ensure_future(self._answer_offers())
        elif kind == "participant_joined":
            participant = message["participant"]
            self.participants[participant["id"]] = participant
        elif kind == "participant_left":
            self.participants.pop(message["participant"]["id"], None)
        elif kind == "state":
            self.state = message["state"]
        elif kind == "muted":
            self.muted = message["muted"]
        elif kind == "ended":
            self.ended = message.get("reason") or "ended"
        elif kind == "error":
            self.errors.append(message)
            # Errors carry no request id: the pending request is the one that failed.
            self._fail_waiters(
                SignallingError(
                    message.get("code", "error"),
                    message.get("message", ""),
                    message.get("detail", ""),
                )
            )


async def _settled(pc: RTCPeerConnection, timeout: float) -> None:
    """Wait until `pc` is past connecting (connected, failed or closed), at most `timeout`."""
    deadline = time.monotonic() + timeout
    while pc.connectionState in ("new", "connecting") and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


# -- the CLI's two commands ------------------------------------------------------------------


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, ensure_ascii=False), flush=True)


def open_source(source: str) -> tuple[dict[str, MediaStreamTrack], Callable[[], None]]:
    """Tracks by source name for 'synthetic', a media file or a capture device; and a stop."""
    if source == "synthetic":
        tracks: dict[str, MediaStreamTrack] = {
            "camera": SyntheticVideoTrack(),
            "mic": ToneAudioTrack(),
        }

        def stop() -> None:
            for track in tracks.values():
                track.stop()

        return tracks, stop
    from aiortc.contrib.media import MediaPlayer

    if source.startswith("/dev/video"):
        player = MediaPlayer(
            source, format="v4l2", options={"video_size": "1280x720", "framerate": "30"}
        )
    elif Path(source).is_file():
        player = MediaPlayer(source, loop=True)  # a lesson recording repeats until stopped
    else:
        raise ValueError(f"source {source!r}: not 'synthetic', a file or a /dev/video* device")
    tracks = {}
    if player.video is not None:
        tracks["camera"] = player.video
    if player.audio is not None:
        tracks["mic"] = player.audio
    if not tracks:
        raise ValueError(f"source {source!r} has neither video nor audio")

    def stop_player() -> None:
        for track in (player.video, player.audio):
            if track is not None:
                track.stop()

    return tracks, stop_player


async def _until(participant: Participant, seconds: float | None) -> None:
    """Sleep `seconds` (forever if None), or until the server ends us."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(participant.closed.wait(), seconds)


async def run_publish(url: str, token: str, source: str, seconds: float | None) -> dict[str, Any]:
    """Join and publish `source`, printing one JSON line per second of what was sent."""
    tracks, stop = open_source(source)
    participant = Participant()
    try:
        await participant.connect(url, token)
        joined = await participant.join()
        _emit({"event": "joined", "you": joined["you"], "room": joined["room"]})
        transceivers = await participant.publish(tracks)
        _emit({"event": "published", "tracks": {s: t.mid for s, t in transceivers.items()}})
        start = time.monotonic()
        last: dict[str, tuple[int, int]] = {}
        while seconds is None or time.monotonic() - start < seconds:
            left = None if seconds is None else seconds - (time.monotonic() - start)
            await _until(participant, 1.0 if left is None else min(1.0, left))
            if participant.closed.is_set():
                break
            line: dict[str, Any] = {"t": round(time.monotonic() - start, 1)}
            for name, transceiver in transceivers.items():
                packets, octets = await _sent(transceiver)
                p0, o0 = last.get(name, (0, 0))
                last[name] = (packets, octets)
                line[name] = {"packets": packets - p0, "kbps": round((octets - o0) * 8 / 1000)}
            _emit(line)
        summary = {
            "event": "summary",
            "seconds": round(time.monotonic() - start, 1),
            "ended": participant.ended,
            "sent": {n: {"packets": p, "bytes": o} for n, (p, o) in last.items()},
        }
        _emit(summary)
        return summary
    finally:
        stop()
        await participant.close()


async def _sent(transceiver: RTCRtpTransceiver) -> tuple[int, int]:
    for stats in (await transceiver.sender.getStats()).values():
        if stats.type == "outbound-rtp":
            return stats.packetsSent, stats.bytesSent
    return 0, 0


_COUNTS = ("frames", "bytes", "keyframes", "unreadable")


@dataclass(eq=False)
class _TrackStats:
    """What arrived on one track: this interval's figures and the running totals."""

    remote: RemoteTrack
    first_frame_s: float | None = None
    now: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    ids: list[int] = field(default_factory=list)  # read this interval
    all_ids: list[int] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)  # capture to decoded, seconds
    all_delays: list[float] = field(default_factory=list)
    intervals: int = 0
    stalled: int = 0  # intervals without a single frame

    def add(self, name: str, value: int = 1) -> None:
        self.now[name] += value
        self.total[name] += value

    def describe(self) -> dict[str, Any]:
        r = self.remote
        return {
            "mid": r.mid,
            "participant": r.participant,
            "name": r.name,
            "source": r.source,
            "kind": r.kind,
        }

    def interval(self, seconds: float) -> dict[str, Any]:
        n = self.now
        line = self.describe() | {
            "frames": n["frames"],
            "fps": round(n["frames"] / seconds, 1),
            "bytes": n["bytes"],
            "kbps": round(n["bytes"] * 8 / seconds / 1000, 1),
        }
        if self.remote.kind == "video":
            line["keyframes"] = n["keyframes"]
        if self.ids or n["unreadable"]:
            line["ids"] = _id_summary(self.ids) | {"unreadable": n["unreadable"]}
        if self.delays:
            line["delay_ms"] = _percentiles(self.delays)
        self.intervals += 1
        self.stalled += n["frames"] == 0
        self.now = dict.fromkeys(_COUNTS, 0)
        self.ids, self.delays = [], []
        return line

    def summary(self, seconds: float) -> dict[str, Any]:
        t = self.total
        out = self.describe() | {
            "frames": t["frames"],
            "fps": round(t["frames"] / seconds, 1) if seconds > 0 else 0.0,
            "bytes": t["bytes"],
            "kbps": round(t["bytes"] * 8 / seconds / 1000, 1) if seconds > 0 else 0.0,
            "intervals": self.intervals,
            "stalled_intervals": self.stalled,
            "first_frame_s": self.first_frame_s,
        }
        if self.remote.kind == "video":
            out["keyframes"] = t["keyframes"]
        if self.all_ids or t["unreadable"]:
            out["ids"] = _id_summary(self.all_ids) | {"unreadable": t["unreadable"]}
        if self.all_delays:
            out["delay_ms"] = _percentiles(self.all_delays)
        return out


def _id_summary(ids: list[int]) -> dict[str, Any]:
    if not ids:
        return {"read": 0}
    ordered = sorted(set(ids))
    # Ids not read between two read ones: lost, skipped or unreadable frames (a jump of 1000+
    # is a new source, not a gap).
    gaps = sum(b - a - 1 for a, b in zip(ordered, ordered[1:], strict=False) if b - a < 1000)
    return {"read": len(ids), "first": ordered[0], "last": ordered[-1], "gaps": gaps}


def _percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def ms(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)

    return {"p50": ms(0.5), "p95": ms(0.95), "max": round(ordered[-1] * 1000, 1)}


class _VideoDecoder:
    """Decodes one received video stream on its own thread, in order, off the event loop."""

    def __init__(self, remote: RemoteTrack) -> None:
        codec = rtc_internals.negotiated_codec(remote.transceiver)
        mime = codec.mimeType.lower() if codec is not None else "video/vp8"
        self.codec = av.CodecContext.create("h264" if mime == "video/h264" else "libvpx", "r")
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="watch-decode")

    def decode(self, data: bytes) -> list[av.VideoFrame]:
        try:
            return list(self.codec.decode(av.Packet(data)))
        except av.error.FFmpegError:
            return []  # a broken frame: the next keyframe repairs the picture

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


async def run_watch(
    url: str,
    token: str,
    seconds: float | None,
    report_every: float = 1.0,
    decode: bool = True,
    send_log: SendLog | None = None,
) -> dict[str, Any]:
    """Join (as the token says, normally a classroom), receive everything offered and print
    one JSON line per interval per track, then a summary line (also returned).

    Frames are counted as complete encoded frames (aiortc never decodes them); with `decode`,
    video is decoded here to read the frame ids of synthetic sources. `send_log` (same process
    only) turns those ids into capture-to-decoded delays.
    """
    participant = Participant(encoded=True)
    stats: dict[str, _TrackStats] = {}  # by mid: the server may re-bind a mid to a new source
    finished: list[dict[str, Any]] = []
    decoders: dict[str, _VideoDecoder] = {}
    loop = asyncio.get_running_loop()
    start = time.monotonic()

    def on_track(remote: RemoteTrack) -> None:
        stats[remote.mid] = _TrackStats(remote)
        _emit({"event": "track", **stats[remote.mid].describe()})

    def on_removed(remote: RemoteTrack) -> None:
        old = stats.pop(remote.mid, None)
        if old is not None:
            finished.append(old.summary(time.monotonic() - start))
        decoder = decoders.pop(remote.mid, None)
        if decoder is not None:
            decoder.close()

    def on_frame(remote: RemoteTrack, frame: EncodedFrame) -> None:
        s = stats.get(remote.mid)
        if s is None:
            return
        s.add("frames")
        s.add("bytes", len(frame.data))
        s.add("keyframes", int(frame.keyframe and remote.kind == "video"))  # audio: all are
        if s.first_frame_s is None:
            s.first_frame_s = round(time.monotonic() - start, 3)
        if decode and remote.kind == "video":
            decoder = decoders.get(remote.mid)
            if decoder is None:
                decoder = decoders[remote.mid] = _VideoDecoder(remote)
            future = loop.run_in_executor(decoder.executor, decoder.decode, frame.data)
            future.add_done_callback(lambda f: on_decoded(s, f))

    def on_decoded(s: _TrackStats, future: asyncio.Future[list[av.VideoFrame]]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        now = time.time()
        for image in future.result():
            frame_id = read_frame_id(image)
            if frame_id is None:
                s.add("unreadable")
                continue
            s.ids.append(frame_id)
            s.all_ids.append(frame_id)
            sent = send_log.get(frame_id) if send_log is not None else None
            if sent is not None:
                s.delays.append(now - sent)
                s.all_delays.append(now - sent)

    participant.on_track.append(on_track)
    participant.on_track_removed.append(on_removed)
    participant.on_encoded_frame.append(on_frame)
    try:
        await participant.connect(url, token)
        joined = await participant.join()
        _emit(
            {
                "event": "joined",
                "you": joined["you"],
                "room": joined["room"],
                "participants": joined["participants"],
            }
        )
        next_report = start + report_every
        end = math.inf if seconds is None else start + seconds
        while time.monotonic() < end and not participant.closed.is_set():
            await _until(participant, max(0.0, min(next_report, end) - time.monotonic()))
            if time.monotonic() >= next_report and not participant.closed.is_set():
                t = round(next_report - start, 1)
                for s in list(stats.values()):
                    _emit({"t": t, **s.interval(report_every)})
                next_report += report_every
        await asyncio.sleep(0.1)  # let in-flight decodes land before the summary
        elapsed = time.monotonic() - start
        summary = {
            "event": "summary",
            "seconds": round(elapsed, 1),
            "ended": participant.ended,
            "tracks": finished + [s.summary(elapsed) for s in stats.values()],
        }
        _emit(summary)
        return summary
    finally:
        for decoder in decoders.values():
            decoder.close()
        await participant.close()
