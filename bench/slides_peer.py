"""The slide benchmark's two participants, each its own process inside a namespace of the
emulated link (bench/slides.py starts them):

- `teacher` (beside the server): opens a deck and turns to each page of a schedule at fixed
  intervals, on the data channel as the teacher page does; writes
  `{"changes": [[mono, page], ...], "via": {"channel": n, "socket": n}}`.
- `classroom` (behind the link): does what web/js/slides.js does: on each `slides_state` (on
  the data channel, as browsers get it) it shows the page, from its cache when there, else
  fetched over HTTP; with `--prefetch` it fetches the deck's pages one at a time in the
  background, always the next one not fetched at or after the current page. A page counts as
  shown when its image is received and decoded. Writes `{"states": [[mono, page, bytes,
  via]], "shown": [[mono, page, cached]], "fetches": [[start, end, page, bytes, why]],
  "joined_mono", "events_received"}`.

Times are time.monotonic(): CLOCK_MONOTONIC, the same clock in every namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

from server.client import Participant


async def run_teacher(url: str, token: str, deck: str, pages: list[int], interval: float,
                      out: Path) -> None:
    changes: list[list[float]] = []
    via = {"channel": 0, "socket": 0}
    async with Participant(encoded=True) as teacher:
        await teacher.connect(url, token)
        await teacher.join()
        await teacher.wait_channels(timeout=30)
        for i, page in enumerate(pages):
            if i == 0:
                message = {"type": "slide_deck", "deck": deck, "page": page}
            else:
                message = {"type": "slide_page", "page": page}
            changes.append([time.monotonic(), page])
            via[await teacher.send_event(message)] += 1
            await asyncio.sleep(interval)
    out.write_text(json.dumps({"changes": changes, "via": via}))


class Classroom:
    def __init__(self, base: str, prefetch: bool) -> None:
        self.base = base
        self.prefetch = prefetch
        self.deck: dict[str, Any] | None = None
        self.page = 0
        self.cache: dict[int, bytes] = {}
        self.inflight: dict[int, asyncio.Future[bytes | None]] = {}
        self.states: list[list[Any]] = []
        self.shown: list[list[Any]] = []
        self.fetches: list[list[Any]] = []
        self._show_task: asyncio.Task[None] | None = None
        self._prefetch_task: asyncio.Task[None] | None = None
        self._page_http: aiohttp.ClientSession | None = None
        self._prefetch_http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Classroom:
        # two connections, as a browser has: the page shown and the background fetches
        self._page_http = aiohttp.ClientSession()
        self._prefetch_http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in (self._show_task, self._prefetch_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for http in (self._page_http, self._prefetch_http):
            if http is not None:
                await http.close()

    def on_event(self, message: dict[str, Any], via: str) -> None:
        if message.get("type") != "slides_state":
            return
        now = time.monotonic()
        deck = message.get("deck")
        same_deck = (deck or {}).get("id") == (self.deck or {}).get("id")
        if same_deck and message["page"] == self.page and self.states:
            return  # the state again (the channel opened): nothing new to show
        self.states.append([now, message["page"], len(json.dumps(message)), via])
        new_deck = deck is not None and not same_deck
        self.deck, self.page = deck, message["page"]
        if deck is None:
            return
        if self._show_task is not None:
            self._show_task.cancel()  # only the latest page is shown
        self._show_task = asyncio.ensure_future(self._show(self.page))
        if new_deck and self.prefetch:
            if self._prefetch_task is not None:
                self._prefetch_task.cancel()
            self._prefetch_task = asyncio.ensure_future(self._prefetch())

    async def _show(self, page: int) -> None:
        cached = page in self.cache
        if not cached and page in self.inflight:
            await self.inflight[page]  # being prefetched: wait for it, as the page does
        data = self.cache.get(page)
        if data is None:
            assert self._page_http is not None
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self.inflight[page] = future  # the prefetcher leaves it alone
            try:
                data = await self._fetch(self._page_http, page, "show")
            finally:
                future.set_result(data if isinstance(data, bytes) else None)
                self.inflight.pop(page, None)
        if data is None:
            return
        Image.open(io.BytesIO(data)).load()  # decoded: what the display needs
        self.shown.append([time.monotonic(), page, cached])

    async def _prefetch(self) -> None:
        assert self.deck is not None and self._prefetch_http is not None
        while (page := self._next_to_fetch()) is not None:
            future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
            self.inflight[page] = future
            try:
                future.set_result(await self._fetch(self._prefetch_http, page, "prefetch"))
            finally:
                if not future.done():
                    future.set_result(None)
                del self.inflight[page]

    def _next_to_fetch(self) -> int | None:
        assert self.deck is not None
        count = self.deck["count"]
        for i in range(count):
            page = (self.page - 1 + i) % count + 1
            if page not in self.cache and page not in self.inflight:
                return page
        return None

    async def _fetch(self, http: aiohttp.ClientSession, page: int, why: str) -> bytes | None:
        assert self.deck is not None
        url = self.base + self.deck["url"].replace("{page}", str(page))
        start = time.monotonic()
        for _ in range(3):
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        data = await r.read()
                        self.cache[page] = data
                        self.fetches.append([start, time.monotonic(), page, len(data), why])
                        return data
            except aiohttp.ClientError:
                await asyncio.sleep(0.5)
        return None


async def run_classroom(url: str, token: str, prefetch: bool, seconds: float, out: Path,
                        ready: Path) -> None:
    async with Classroom(url, prefetch) as room, Participant(encoded=True) as me:
        me.on_event.append(room.on_event)
        await me.connect(url, token)
        await me.join(timeout=30)
        await me.wait_channels(timeout=30)  # ready as a browser is: the channels open
        joined = time.monotonic()
        ready.write_text(str(joined))
        await asyncio.sleep(seconds)
        result = {
            "joined_mono": joined,
            "states": room.states,
            "shown": room.shown,
            "fetches": room.fetches,
            "errors": me.errors,
            "events_received": me.events_received,
        }
    out.write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.slides_peer")
    p.add_argument("role", choices=("teacher", "classroom"))
    p.add_argument("--url", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--deck")
    p.add_argument("--pages", help="teacher: comma-separated page schedule")
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--prefetch", action="store_true")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--ready", type=Path, help="classroom: written once joined")
    args = p.parse_args(argv)
    if args.role == "teacher":
        pages = [int(x) for x in args.pages.split(",")]
        asyncio.run(run_teacher(args.url, args.token, args.deck, pages, args.interval, args.out))
    else:
        asyncio.run(run_classroom(args.url, args.token, args.prefetch, args.seconds, args.out,
                                  args.ready))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
