"""The deck-load benchmark's two small participants, each its own process in a namespace of the
emulated link (bench/deckload.py starts them):

- `open` (beside the server): a teacher opens the deck at page 1 and leaves (the publishing
  teacher keeps the room).
- `classroom` (behind the link): receives the live lesson as the link benchmark's classroom
  does (bench/link_receiver.Recorder, plus each audio packet's arrival time) and, from
  --fetch-at on, fetches the room's deck as web/js/slides.js does: the current page first as
  its <img> does (no token), then every other page one at a time, with the page's token as
  `Authorization: Bearer` (--paced: what the classroom page sends now) or without (--unpaced:
  the page before pacing, the baseline). It stays until the deck is in and --window seconds
  have passed since --fetch-at (at most --max), so the server paces a member still in the room.
  Writes the Recorder's JSON with `audio_mono` and `deck`: {start, done, fetches: [[start, end,
  page, bytes, status, with_token]], count}.

Times are time.monotonic(): CLOCK_MONOTONIC, the same clock in every namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import aiohttp

from server.client import Participant, RemoteTrack

from .link_receiver import Recorder, log_video_packets, sample_assemblers

PAGE_TIMEOUT_S = 600.0  # a paced page at the trickle rate takes a minute; a stuck one ends


async def run_open(url: str, token: str, deck: str) -> None:
    async with Participant(encoded=True) as teacher:
        await teacher.connect(url, token)
        await teacher.join()
        opened = asyncio.get_running_loop().create_future()

        def on_message(message: dict[str, Any]) -> None:
            if message.get("type") == "slides_state" and (message.get("deck") or {}).get("id"):
                if not opened.done():
                    opened.set_result(message)
            if message.get("type") == "error" and not opened.done():
                opened.set_exception(RuntimeError(json.dumps(message, ensure_ascii=False)))

        teacher.on_message.append(on_message)
        await teacher.send({"type": "slide_deck", "deck": deck, "page": 1})
        state = await asyncio.wait_for(opened, 10.0)
        print(json.dumps({"event": "opened", "deck": deck, "page": state["page"]}), flush=True)


class TimedRecorder(Recorder):
    """The link benchmark's record, plus when each audio packet arrived (audio loss in a
    window) and the room's latest slide state."""

    def __init__(self, frames_file: str) -> None:
        super().__init__(frames_file)
        self.audio_mono: list[float] = []
        self.slides: dict[str, Any] | None = None
        self.slides_seen = asyncio.Event()

    def on_frame(self, remote: RemoteTrack, frame: Any) -> None:
        if remote.kind == "audio":
            self.audio_mono.append(round(time.monotonic(), 4))
        super().on_frame(remote, frame)

    def on_message(self, message: dict[str, Any]) -> None:
        super().on_message(message)
        if message.get("type") == "slides_state" and message.get("deck"):
            self.slides = message
            self.slides_seen.set()

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "audio_mono": self.audio_mono}


async def fetch_deck(base: str, token: str, state: dict[str, Any], paced: bool) -> dict[str, Any]:
    """The deck as the classroom page fetches it: current page first, then the rest in order
    from there, one at a time."""
    deck, current = state["deck"], state["page"]
    count = deck["count"]
    order = [(current - 1 + i) % count + 1 for i in range(count)]
    fetches: list[list[Any]] = []
    start = time.monotonic()
    timeout = aiohttp.ClientTimeout(total=PAGE_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        for page in order:
            headers = {"Authorization": f"Bearer {token}"} if paced and page != current else {}
            url = base + deck["url"].replace("{page}", str(page))
            begun = time.monotonic()
            try:
                async with http.get(url, headers=headers) as r:
                    body = await r.read()
                    status: Any = r.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                body, status = b"", repr(exc)
            fetches.append([begun, time.monotonic(), page, len(body), status, bool(headers)])
    complete = all(f[4] == 200 for f in fetches)
    return {"start": start, "done": time.monotonic() if complete else None,
            "fetches": fetches, "count": count}


async def run_classroom(args: argparse.Namespace) -> None:
    recorder = TimedRecorder(args.frames)
    log_video_packets(recorder)
    participant = Participant(encoded=True)
    participant.on_encoded_frame.append(recorder.on_frame)
    participant.on_message.append(recorder.on_message)
    deck: dict[str, Any] = {}
    fetch: asyncio.Task[dict[str, Any]] | None = None
    try:
        await participant.connect(args.url, args.token)
        recorder.joined_mono = time.monotonic()
        await participant.join()
        sampler = asyncio.ensure_future(sample_assemblers(participant, recorder))
        await asyncio.wait_for(recorder.slides_seen.wait(), 20.0)
        await asyncio.sleep(max(0.0, args.fetch_at - time.monotonic()))
        assert recorder.slides is not None
        fetch = asyncio.ensure_future(
            fetch_deck(args.url, args.token, recorder.slides, args.mode == "paced")
        )
        window_end = args.fetch_at + args.window
        hard_end = args.fetch_at + args.max
        while time.monotonic() < hard_end and not participant.closed.is_set():
            if fetch.done() and time.monotonic() >= window_end:
                break
            await asyncio.sleep(0.1)
        if fetch.done():
            deck = fetch.result()
        sampler.cancel()
    finally:
        if fetch is not None and not fetch.done():
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fetch
        with contextlib.suppress(Exception):
            await asyncio.wait_for(participant.close(), 5.0)
        recorder.close()
        out = recorder.to_json()
        out["deck"] = deck or {"start": args.fetch_at, "done": None, "fetches": []}
        out["fetch_mode"] = args.mode
        Path(args.out).write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.deckload_peer")
    sub = parser.add_subparsers(dest="role", required=True)
    op = sub.add_parser("open")
    op.add_argument("--url", required=True)
    op.add_argument("--token", required=True)
    op.add_argument("--deck", required=True)
    cl = sub.add_parser("classroom")
    cl.add_argument("--url", required=True)
    cl.add_argument("--token", required=True)
    cl.add_argument("--frames", required=True, help="the publisher's frames file")
    cl.add_argument("--mode", choices=("paced", "unpaced"), required=True)
    cl.add_argument("--fetch-at", type=float, required=True, help="time.monotonic() to start")
    cl.add_argument("--window", type=float, required=True)
    cl.add_argument("--max", type=float, required=True)
    cl.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.role == "open":
        asyncio.run(run_open(args.url, args.token, args.deck))
    else:
        asyncio.run(run_classroom(args))


if __name__ == "__main__":
    main()
