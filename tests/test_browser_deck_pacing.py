"""The classroom page in real Chromium says who it is on its deck prefetches: the current page
is fetched as the page's <img> (no token), every other page with the page's token as
`Authorization: Bearer` and never a token in the URL; the pages it prefetched that way come
from the browser's cache when the teacher turns to them (no second request)."""

from __future__ import annotations

import asyncio
import logging
import re

import aiohttp

from bench.sample_deck import sample_deck
from media.synthetic import SyntheticVideoTrack, ToneAudioTrack
from server.client import Participant
from tests.chromium import chromium
from tests.test_browser_lesson import CLASS_A, ROOM, open_page
from tests.test_browser_slides import deck_requests, shows_page

PAGE = re.compile(r"/decks/[0-9a-f]{64}/(\d+)\.webp$")


async def test_prefetches_carry_the_token_in_a_header_and_fill_the_cache(server, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    token_t = server.mint(ROOM, "teacher", "王老师", participant_id="t")
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/api/decks?token={token_t}&name=d.pdf", data=sample_deck(4)
        ) as r:
            assert r.status == 201, await r.text()
            manifest = await r.json()
    teacher = Participant()
    await teacher.connect(server.url, token_t)
    await teacher.join()
    await teacher.publish(
        {"camera": SyntheticVideoTrack(320, 180, fps=15), "mic": ToneAudioTrack()}
    )
    try:
        async with chromium() as browser:
            cls = await open_page(browser, server, CLASS_A)
            token_c = cls.page.url.split("token=")[1]
            asked: dict[int, list[str | None]] = {}

            async def on_request(request) -> None:
                found = PAGE.search(request.url.split("?")[0])
                if found and "token" not in request.url:
                    headers = await request.all_headers()
                    asked.setdefault(int(found[1]), []).append(headers.get("authorization"))
                elif found:
                    asked.setdefault(-1, []).append(request.url)  # a token in a page URL

            cls.page.on("request", lambda r: asyncio.ensure_future(on_request(r)))
            # The deck opens once the listener is on: the room's page request cannot slip past it.
            await teacher.send({"type": "slide_deck", "deck": manifest["id"], "page": 1})
            await cls.wait_live()
            await shows_page(cls.page, 1)
            await cls.page.wait_for_function(
                "window.tongke.slides._prefetched.size === 4", timeout=60_000
            )
            await asyncio.sleep(0.2)  # the last request event is handled
            assert -1 not in asked, asked[-1]
            assert asked[1] == [None], asked  # the room's page: the <img>, at once
            for n in (2, 3, 4):
                assert asked[n] == [f"Bearer {token_c}"], (n, asked)

            # the teacher turns to prefetched pages: shown from the cache, not asked again
            before = deck_requests(caplog, cls.page.url)
            for n in (3, 2):
                await teacher.send({"type": "slide_page", "page": n})
                await shows_page(cls.page, n)
            assert deck_requests(caplog, cls.page.url) == before
            assert not cls.errors, cls.errors
    finally:
        await teacher.close()
