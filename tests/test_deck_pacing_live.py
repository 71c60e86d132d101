"""Deck pages beside a live lesson (a real server, a teacher and a classroom as real aiortc
peers on loopback): the classroom's prefetched pages arrive no faster than what its link's
estimate leaves after the lesson (two at once share it), the room's current page and a
request from nobody in a room at once, and a page the room turns to while it is being
prefetched goes at once from then."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from bench.sample_deck import sample_deck
from server.client import Participant
from server.slides.pacing import BURST_BYTES, RECHECK_S
from tests.test_lesson import ROOM, teacher

CLASS_ID = "c1"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


class SpareSampler:
    """The classroom's spare rate as the server sees it, every 10 ms while a page downloads."""

    def __init__(self, server) -> None:
        self._link = server.rooms.get(ROOM).participants[CLASS_ID].session.link
        self.samples: list[tuple[float, float]] = []  # (monotonic, bits/s)
        self._sample()
        self._task = asyncio.ensure_future(self._run())

    def _sample(self) -> None:
        self.samples.append((time.monotonic(), self._link.spare_bps()))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(0.01)
            self._sample()

    async def stop(self) -> None:
        self._sample()
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    @property
    def rates(self) -> list[float]:
        return [bps for _, bps in self.samples]

    def allowed_bytes(self) -> float:
        """What the spare rate allowed over the download: its integral (a step function)."""
        pairs = zip(self.samples, self.samples[1:], strict=False)
        return sum((t1 - t0) * bps / 8 for (t0, bps), (t1, _) in pairs)


async def get_page(http, url: str, token: str | None = None, **headers: str):
    """(status, body, seconds until the last byte)."""
    if token:
        headers["Authorization"] = f"Bearer {token}"
    started = time.monotonic()
    async with http.get(url, headers=headers) as r:
        body = await r.read()
        return r.status, r.headers, body, time.monotonic() - started


async def test_prefetched_pages_are_paced_beside_the_lesson_and_the_current_page_is_not(
    server, http
):
    token_t = server.mint(ROOM, "teacher", "王老师", participant_id="t")
    async with http.post(
        f"{server.url}/api/decks?token={token_t}&name=lesson.pdf", data=sample_deck(6)
    ) as r:
        assert r.status == 201, await r.text()
        manifest = await r.json()
    sizes = {n: p["bytes"] for n, p in enumerate(manifest["pages"], start=1)}
    page_url = f"{server.url}{manifest['url']}"

    t = await teacher(server)  # camera and mic, live
    cls = Participant(encoded=True)
    token_c = server.mint(ROOM, "classroom", "烈山湖学校七(1)班", participant_id=CLASS_ID)
    await cls.connect(server.url, token_c)
    await cls.join()
    await cls.wait_track("camera", "t")
    await t.send({"type": "slide_deck", "deck": manifest["id"], "page": 1})
    await asyncio.sleep(1.0)  # the lesson flows and the link has committed it
    assert server.rooms.get(ROOM).slides.page == 1

    # the page the room shows: at once, even asked for by a member
    sampler = SpareSampler(server)
    status, headers, body, took = await get_page(http, page_url.format(page=1), token_c)
    await sampler.stop()
    assert status == 200 and len(body) == sizes[1]
    paced_floor = (sizes[1] - BURST_BYTES) * 8 / max(sampler.rates)
    assert took < paced_floor / 2, (took, paced_floor)

    # a prefetch: no faster than the spare rate, and following it
    for page in (2, 3):
        sampler = SpareSampler(server)
        status, headers, body, took = await get_page(http, page_url.format(page=page), token_c)
        await sampler.stop()
        assert status == 200 and len(body) == sizes[page]
        assert headers["Cache-Control"] == "public, max-age=31536000, immutable"
        etag = headers["ETag"]
        # never ahead of what the spare rate allowed, nor far behind it; give or take one
        # burst and what a falling rate lets through before the pacer reads it again
        allowed = sampler.allowed_bytes()
        slack = BURST_BYTES + RECHECK_S * max(sampler.rates) / 8
        assert sizes[page] <= allowed * 1.02 + slack, (page, sizes[page], allowed, slack, took)
        assert sizes[page] >= allowed * 0.7 - 4000, (page, sizes[page], allowed, took)
        fastest = (sizes[page] - BURST_BYTES) * 8 / max(sampler.rates)

    # two prefetches at once share the member's rate
    sampler = SpareSampler(server)
    both = await asyncio.gather(
        *(get_page(http, page_url.format(page=n), token_c) for n in (4, 6))
    )
    await sampler.stop()
    assert [len(b[2]) for b in both] == [sizes[4], sizes[6]]
    slack = 2 * BURST_BYTES + RECHECK_S * max(sampler.rates) / 8
    assert sizes[4] + sizes[6] <= sampler.allowed_bytes() * 1.02 + slack, sampler.allowed_bytes()

    # the same page for nobody in a room (a preview, a replay): at once; a cache's revalidation
    # is answered 304 at once as before
    status, _, body, quick = await get_page(http, page_url.format(page=3))
    assert status == 200 and len(body) == sizes[3] and quick < fastest / 2
    status, _, body, quick = await get_page(
        http, page_url.format(page=3), token_c, **{"If-None-Match": etag}
    )
    assert status == 304 and body == b"" and quick < 0.5

    # the room turns to the page the classroom is prefetching: the rest comes at once
    big = max((p for p in sizes if p > 3), key=lambda p: sizes[p])  # the photo page
    spare = server.rooms.get(ROOM).participants[CLASS_ID].session.link.spare_bps()
    paced_s = sizes[big] * 8 / spare
    fetch = asyncio.ensure_future(get_page(http, page_url.format(page=big), token_c))
    await asyncio.sleep(min(0.5, paced_s / 4))
    assert not fetch.done()
    turned = time.monotonic()
    await t.send({"type": "slide_page", "page": big})
    status, _, body, took = await fetch
    assert status == 200 and len(body) == sizes[big]
    assert time.monotonic() - turned < 0.5, (time.monotonic() - turned, paced_s)

    for p in (t, cls):
        await p.close()
