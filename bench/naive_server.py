"""The naive fan-out baseline: stock aiortc with a MediaRelay, as most aiortc examples do it.

aiortc decodes the publisher's video once; every subscriber gets `relay.subscribe(track)` added
to its own peer connection, so each subscriber's RTCRtpSender re-encodes VP8 on its own.
Unbuffered proxies: a subscriber whose encoder cannot keep up skips frames instead of queueing
them without bound (latency and memory would grow instead, the frame rate would be the same).

    python -m bench.naive_server --port N

HTTP on 127.0.0.1, one offer/answer exchange per peer connection (no trickle ICE):
- `POST /publish {"sdp": offer}` → `{"sdp": answer}`: the publisher's sendonly video;
- `POST /subscribe {"sdp": offer}` → `{"sdp": answer}`: a recvonly video transceiver, answered
  once the publisher's track exists.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from media.rtc_internals import use_host_addresses

SOURCE_WAIT = 10.0

PCS = web.AppKey("pcs", set)
RELAY = web.AppKey("relay", MediaRelay)


class PublishedSource:
    """The publisher's video track, once it has arrived."""

    def __init__(self) -> None:
        self.track: MediaStreamTrack | None = None
        self.arrived = asyncio.Event()


SOURCE = web.AppKey("source", PublishedSource)


async def _answer(pc: RTCPeerConnection) -> web.Response:
    answer = await pc.createAnswer()
    await pc.setLocalDescription(answer)
    return web.json_response({"sdp": pc.localDescription.sdp})


def _new_pc(app: web.Application) -> RTCPeerConnection:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    app[PCS].add(pc)
    return pc


async def publish(request: web.Request) -> web.Response:
    body = await request.json()
    pc = _new_pc(request.app)
    source = request.app[SOURCE]

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        if track.kind == "video" and source.track is None:
            source.track = track
            source.arrived.set()

    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
    return await _answer(pc)


async def subscribe(request: web.Request) -> web.Response:
    body = await request.json()
    source = request.app[SOURCE]
    try:
        await asyncio.wait_for(source.arrived.wait(), SOURCE_WAIT)
    except TimeoutError as exc:
        raise web.HTTPServiceUnavailable(text="no publisher yet") from exc
    assert source.track is not None
    pc = _new_pc(request.app)
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], "offer"))
    # addTrack takes the offered recvonly transceiver: one encoder per subscriber.
    pc.addTrack(request.app[RELAY].subscribe(source.track, buffered=False))
    return await _answer(pc)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "peers": len(request.app[PCS])})


async def _close_all(app: web.Application) -> None:
    await asyncio.gather(*(pc.close() for pc in app[PCS]), return_exceptions=True)


def create_app() -> web.Application:
    app = web.Application()
    app[PCS] = set()
    app[RELAY] = MediaRelay()
    app[SOURCE] = PublishedSource()
    app.on_shutdown.append(_close_all)
    app.router.add_post("/publish", publish)
    app.router.add_post("/subscribe", subscribe)
    app.router.add_get("/health", health)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.naive_server")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    use_host_addresses(["127.0.0.1"])
    web.run_app(create_app(), host="127.0.0.1", port=args.port, print=None, shutdown_timeout=2)


if __name__ == "__main__":
    main()
