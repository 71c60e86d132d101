"""The parts of `tongke bench deckload` that need no emulated link, against a real server: the
teacher that opens the deck, and the classroom's fetch (current page first without a token,
then the others with the classroom's token when paced, without when not)."""

from __future__ import annotations

import aiohttp

from bench.deckload_peer import fetch_deck, run_open
from bench.sample_deck import sample_deck
from server.client import Participant

ROOM = "bench-deckload"


async def test_open_then_fetch_the_deck_as_the_classroom_page_does(server):
    async with aiohttp.ClientSession() as http:
        token_t = server.mint(ROOM, "teacher", "课件", participant_id="slides")
        async with http.post(
            f"{server.url}/api/decks?token={token_t}&name=d.pdf", data=sample_deck(3)
        ) as r:
            assert r.status == 201, await r.text()
            manifest = await r.json()
    sizes = [p["bytes"] for p in manifest["pages"]]
    states: list[dict] = []
    cls = Participant(encoded=True)
    cls.on_message.append(lambda m: states.append(m) if m["type"] == "slides_state" else None)
    token_c = server.mint(ROOM, "classroom", "七(1)班", participant_id="class1")
    await cls.connect(server.url, token_c)
    await cls.join()
    await run_open(server.url, token_t, manifest["id"])
    assert server.rooms.get(ROOM).slides.page == 1
    state = next(s for s in states if s["deck"])
    for paced in (True, False):
        got = await fetch_deck(server.url, token_c, state, paced)
        assert got["done"] is not None and got["count"] == 3
        assert [f[2] for f in got["fetches"]] == [1, 2, 3]
        assert [f[3] for f in got["fetches"]] == sizes
        assert all(f[4] == 200 for f in got["fetches"])
        assert [f[5] for f in got["fetches"]] == [False, paced, paced]
    await cls.close()
