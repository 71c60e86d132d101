"""Benchmark clients: a VP8 publisher and subscribers that count frames without decoding.

Subscribers hook their receivers with media.rtc_internals.ReceiverHook (the SFU's own receive
path), with a frame counter where the SFU has its FrameAssembler: packets are counted into
frames and dropped, nothing is assembled or decoded, so a client process can hold many
subscribers next to a 720p publisher. Two flavours: Tongke's signalling socket
(docs/signalling.md) and the naive baseline's HTTP offer/answer (bench/naive_server.py).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamTrack

from media.assembler import FrameAssembler, SequenceUnwrapper
from media.frames import is_keyframe
from media.rtc_internals import ReceiverHook

PLI_INTERVAL = 0.5  # a subscriber's own keyframe requests, at most this often
SIGNAL_TIMEOUT = 15.0
MAX_PARTIAL_FRAMES = 64  # frames still missing packets; older ones are forgotten


def rtc_config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])  # loopback only: no public STUN


def pin_vp8_bitrate(bitrate: int) -> None:
    """Make every aiortc VP8 encoder in this process encode at `bitrate` (bits/s), whatever
    REMB says.

    The benchmark needs the same source in both phases: stock aiortc starts at 500 kbps, climbs
    only as the receiver's REMB allows and falls when an overloaded server's REMB does (the
    naive baseline's did, to ~130 kbps). The only encoder in the benchmark's client process is
    the publisher's; servers run in their own processes, untouched.
    """
    vpx.DEFAULT_BITRATE = vpx.MIN_BITRATE = vpx.MAX_BITRATE = bitrate  # read at each use


@dataclass
class FrameCounter:
    """Encoded frames a subscriber received (or a publisher sent)."""

    frames: int = 0
    octets: int = 0
    keyframes: int = 0

    def add(self, octets: int, keyframe: bool) -> None:
        self.frames += 1
        self.octets += octets
        self.keyframes += keyframe

    def tick(self, *_: object) -> None:
        self.frames += 1

    def snapshot(self) -> FrameCounter:
        return FrameCounter(self.frames, self.octets, self.keyframes)


@dataclass
class _Partial:
    seqs: set[int]
    octets: int = 0
    first: int | None = None
    last: int | None = None
    keyframe: bool = False


class FrameCounting(FrameAssembler):
    """Stands where the SFU's FrameAssembler stands in a ReceiverHook; counts, keeps nothing.

    A frame counts once every packet from its first to its marker is here and the frame before
    it counted too, unless it is a keyframe: the frames a decoder could show. A lost packet
    costs frames until the next keyframe (asked for), never the rest of the run.
    A subclass only so that whatever else the hook asks of an assembler (NACK retries) is
    there; the base holds no packets, so it has nothing to ask.
    """

    def __init__(self, codec: str, counter: FrameCounter, keyframe_needed: Callable[[], None]):
        super().__init__(codec, "video", _unused, keyframe_needed)
        self._counter = counter
        self._keyframe_needed = keyframe_needed
        self._seq = SequenceUnwrapper()
        self._partial: dict[int, _Partial] = {}  # by RTP timestamp, oldest first
        self._last_end: int | None = None
        self._decodable = False

    def add(
        self,
        seq16: int,
        timestamp: int,
        marker: bool,
        data: bytes,
        now: float,
        starts_frame: bool = False,
    ) -> None:
        seq = self._seq.unwrap(seq16)
        frame = self._partial.get(timestamp)
        if frame is None:
            frame = self._partial[timestamp] = _Partial(set())
            if len(self._partial) > MAX_PARTIAL_FRAMES:
                del self._partial[next(iter(self._partial))]
        if seq in frame.seqs:
            return
        frame.seqs.add(seq)
        frame.octets += len(data)
        if starts_frame:
            frame.first = seq
            frame.keyframe = is_keyframe(self.codec, data)  # VP8: the first byte says
        if marker:
            frame.last = seq
        if frame.first is not None and frame.last is not None:
            if len(frame.seqs) == frame.last - frame.first + 1:
                del self._partial[timestamp]
                self._complete(frame)

    def _complete(self, frame: _Partial) -> None:
        assert frame.first is not None and frame.last is not None
        follows = self._last_end is not None and frame.first == self._last_end + 1
        if self._last_end is None or frame.last > self._last_end:
            self._last_end = frame.last
        if frame.keyframe:
            self._decodable = True
        elif not follows:
            self._decodable = False  # a frame went missing: undecodable until a keyframe
        if self._decodable:
            self._counter.add(frame.octets, frame.keyframe)
        else:
            self._keyframe_needed()


class _Hooks:
    """ReceiverHooks of one client: counted frames, throttled PLIs while waiting for a key."""

    def __init__(self, counter: FrameCounter) -> None:
        self.counter = counter
        self.hooks: list[ReceiverHook] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def install(self, receiver: RTCRtpReceiver) -> None:
        last_pli = -PLI_INTERVAL

        def keyframe_needed() -> None:
            nonlocal last_pli
            now = time.monotonic()
            if now - last_pli < PLI_INTERVAL:
                return
            last_pli = now
            task = asyncio.ensure_future(hook.send_pli())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        hook = ReceiverHook(receiver, "video", _unused, keyframe_needed)
        # The hook's factory of frame assemblers, swapped for our counter.
        if not hasattr(hook._buffer, "_make"):
            raise RuntimeError("media.rtc_internals.ReceiverHook changed: update bench/peers.py")
        hook._buffer._make = lambda codec: FrameCounting(codec, self.counter, keyframe_needed)
        self.hooks.append(hook)


def _unused(*_: object) -> None:
    raise AssertionError("FrameCounting never emits frames")


class TongkePeer:
    """One participant on Tongke's signalling socket; answers every subscribe offer."""

    def __init__(self, http: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._http = http
        self._url = base_url.replace("http", "ws", 1) + "/ws?token=" + token
        self.received = FrameCounter()
        self._hooks = _Hooks(self.received)
        self.subscribe_pc = RTCPeerConnection(rtc_config())
        self.subscribe_pc.on("track", self._on_track)
        self.publish_pc: RTCPeerConnection | None = None
        self.errors: list[dict[str, Any]] = []
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    async def join(self) -> None:
        self._ws = await self._http.ws_connect(self._url)
        self._reader = asyncio.ensure_future(self._read())
        await self._request({"type": "join"}, "joined")

    async def publish(self, track: MediaStreamTrack, source: str = "camera") -> RTCRtpSender:
        pc = self.publish_pc = RTCPeerConnection(rtc_config())
        transceiver = pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        reply = await self._request(
            {
                "type": "publish",
                "sdp": pc.localDescription.sdp,
                "tracks": {transceiver.mid: source},
            },
            "publish_answer",
        )
        await pc.setRemoteDescription(RTCSessionDescription(reply["sdp"], "answer"))
        return transceiver.sender

    async def close(self) -> None:
        if self._ws is not None and not self._ws.closed:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
        for pc in (self.publish_pc, self.subscribe_pc):
            if pc is not None:
                await pc.close()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "video":
            return
        for transceiver in self.subscribe_pc.getTransceivers():
            if transceiver.receiver.track is track:
                self._hooks.install(transceiver.receiver)  # before media flows: never decode

    async def _send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None
        await self._ws.send_json({"v": 1, **message})

    async def _request(self, message: dict[str, Any], reply: str) -> dict[str, Any]:
        future = self._waiting[reply] = asyncio.get_running_loop().create_future()
        await self._send(message)
        return await asyncio.wait_for(future, SIGNAL_TIMEOUT)

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for msg in self._ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await self._dispatch(json.loads(msg.data))
        except Exception as exc:  # a failed answer must show up in `errors`, not vanish
            self._fail({"type": "client_error", "detail": repr(exc)})

    async def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "subscribe_offer":
            await self._answer(message["sdp"])
        elif kind == "error":
            self._fail(message)
        future = self._waiting.pop(kind, None)
        if future is not None and not future.done():
            future.set_result(message)

    def _fail(self, message: dict[str, Any]) -> None:
        self.errors.append(message)
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(RuntimeError(f"signalling failed: {message}"))

    async def _answer(self, sdp: str) -> None:
        pc = self.subscribe_pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self._send({"type": "subscribe_answer", "sdp": pc.localDescription.sdp})


async def _offer_answer(http: aiohttp.ClientSession, url: str, pc: RTCPeerConnection) -> None:
    await pc.setLocalDescription(await pc.createOffer())
    async with http.post(url, json={"sdp": pc.localDescription.sdp}) as resp:
        resp.raise_for_status()
        answer = await resp.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))


async def naive_publish(
    http: aiohttp.ClientSession, base_url: str, track: MediaStreamTrack
) -> tuple[RTCPeerConnection, RTCRtpSender]:
    pc = RTCPeerConnection(rtc_config())
    transceiver = pc.addTransceiver(track, direction="sendonly")
    await _offer_answer(http, f"{base_url}/publish", pc)
    return pc, transceiver.sender


class NaiveSubscriber:
    """A recvonly peer of the naive server, counting frames without decoding."""

    def __init__(self) -> None:
        self.received = FrameCounter()
        self._hooks = _Hooks(self.received)
        self.pc = RTCPeerConnection(rtc_config())

    async def connect(self, http: aiohttp.ClientSession, base_url: str) -> None:
        transceiver = self.pc.addTransceiver("video", direction="recvonly")
        self._hooks.install(transceiver.receiver)
        await _offer_answer(http, f"{base_url}/subscribe", self.pc)

    async def close(self) -> None:
        await self.pc.close()
