"""Slides in real Chromium pages against the real server: the teacher uploads a deck on the
teacher page, turns pages (keys, thumbnails), points and draws; two classrooms (one joining
late) show the same page and the same ink: checked in the DOM and in screenshots. The slide
events travel on the WebRTC data channels both ways (the pages count them by path)."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import numpy as np
from PIL import Image

from bench.sample_deck import sample_deck
from tests.chromium import chromium
from tests.test_browser_lesson import CLASS_A, CLASS_B, ROOM, TEACHER, open_page

BLUE = (0x1E, 0x88, 0xE5)  # the pen's blue swatch


def deck_requests(caplog, page_url: str) -> list[str]:
    """Page images the server sent to the page at `page_url` (its Referer in the access log)."""
    token = page_url.split("token=")[1]
    return [
        m for r in caplog.records
        if "/decks/" in (m := r.getMessage()) and "/thumb/" not in m and token in m
    ]


async def shows_page(page, n: int, timeout_ms: int = 15_000) -> None:
    await page.locator(f"#slide-view[data-page='{n}'][data-shown='{n}']").wait_for(
        state="attached", timeout=timeout_ms
    )


async def blue_pixels(page) -> int:
    """Pen-blue pixels in a screenshot of the slide (page image, ink canvas and all)."""
    png = await page.locator("#slide-view .slide-frame").screenshot()
    px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    near = np.abs(px - np.array(BLUE)).max(axis=-1) < 40
    return int(near.sum())


async def slide_events(page) -> dict:
    """The page's count of slide events by path: received, applied (news), sent."""
    return await page.evaluate("window.tongke.session.slideEvents")


async def test_teacher_turns_pages_and_draws_two_classrooms_follow(server, artifacts, caplog):
    caplog.set_level(logging.INFO, logger="aiohttp.access")  # which deck files were fetched
    async with chromium() as browser:
        teacher = await open_page(browser, server, TEACHER)
        await teacher.wait_live()
        early = await open_page(browser, server, CLASS_A)
        await early.wait_live()
        t = teacher.page
        assert await t.locator("#share-screen").is_visible()  # screen sharing stays

        # Upload through the page's own file input.
        await t.set_input_files(
            "#deck-file",
            files=[{"name": "二次函数.pdf", "mimeType": "application/pdf",
                    "buffer": sample_deck(6)}],
        )
        await shows_page(t, 1, timeout_ms=30_000)
        assert "共 6 页" in await t.inner_text("#deck-status")
        assert await t.locator("#thumbs img.thumb").count() == 6
        await shows_page(early.page, 1)
        # the classroom's stage: the page beside the teacher's camera
        assert await early.page.locator("#stage.with-slides").count() == 1
        await early.page.locator("#pip video[data-source=camera]").wait_for(
            state="attached", timeout=15_000
        )

        # Keys and thumbnails turn pages.
        await t.locator("body").click(position={"x": 5, "y": 5})
        await t.keyboard.press("ArrowRight")
        await t.keyboard.press("ArrowRight")
        await shows_page(early.page, 3)
        await t.locator("#thumbs img.thumb[data-page='5']").click()
        await shows_page(early.page, 5)
        await t.keyboard.press("PageUp")
        await shows_page(early.page, 4)
        await shows_page(t, 4)
        assert "第 4 / 6 页" in await t.inner_text("#page-label")
        assert await blue_pixels(early.page) == 0

        # The laser pointer shows on the classroom.
        frame = t.locator("#teacher-slide .slide-frame")
        await frame.scroll_into_view_if_needed()
        box = await frame.bounding_box()
        assert box is not None
        await t.click("[data-tool=pointer]")
        await t.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
        await t.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4, steps=5)
        await early.page.locator("#slide-view .slide-pointer:not([hidden])").wait_for(
            timeout=5000
        )

        # Draw a blue zigzag with the pen.
        await t.click(".swatch[data-color='#1e88e5']")
        await draw_zigzag(t, frame, 12)
        await early.page.wait_for_function(
            "window.tongke.slides.ink.length > 0 && window.tongke.slides.page === 4"
        )

        # Everything since the deck opened came on the data channels: the teacher sent on
        # them, the classroom applied only its join state from the socket (before the channel
        # was open), every page turn, pointer move and stroke from the channel.
        sent = (await slide_events(t))["sent"]
        assert sent["socket"] == 0 and sent["channel"] >= 6, sent
        got = await slide_events(early.page)
        assert got["applied"]["socket"] <= 1, got
        assert got["received"]["socket"] <= 1, got  # the socket stays quiet once it is open
        # deck, 3 turns, ≥ 1 pointer move, ≥ 1 stroke
        assert got["applied"]["channel"] >= 6, got

        # A classroom joining now gets page 4 with its ink at once, on the channel as it opens.
        late = await open_page(browser, server, CLASS_B)
        await shows_page(late.page, 4)
        await late.page.wait_for_function(
            "window.tongke.session.slideEvents.received.channel >= 1"
        )
        board = server.rooms.get(ROOM).slides
        await early.page.wait_for_function(
            "n => window.tongke.slides.ink.length === n", arg=len(board.ink)
        )
        for cls in (early, late):
            ink = await cls.page.evaluate("window.tongke.slides.ink")
            assert ink == board.ink, cls.name
            assert all(s["color"] == "#1e88e5" for s in ink)
        await asyncio.sleep(0.3)  # the canvas is drawn; the screenshot sees it
        shots = {cls.name: await blue_pixels(cls.page) for cls in (early, late)}
        assert all(n > 300 for n in shots.values()), shots
        await early.page.screenshot(path=str(artifacts / "classroom-slides.png"))
        await late.page.screenshot(path=str(artifacts / "classroom-slides-late.png"))
        await t.screenshot(path=str(artifacts / "teacher-slides.png"))

        # Clear wipes the ink everywhere.
        await t.click("#clear-ink")
        for cls in (early, late):
            await cls.page.wait_for_function("window.tongke.slides.ink.length === 0")
        await asyncio.sleep(0.3)
        assert await blue_pixels(late.page) == 0

        # The classroom has every page in its cache: reloaded, it fetches none again.
        for cls in (early, late):  # both done prefetching: no request of theirs still to come
            await cls.page.wait_for_function("window.tongke.slides._prefetched.size === 6")
        before = deck_requests(caplog, early.page.url)
        assert before, "the access log names the classroom's page requests"
        await early.page.reload()
        await shows_page(early.page, 4)
        await early.page.wait_for_function(  # the reloaded page's channel is up
            "window.tongke.session.slideEvents.received.channel >= 1"
        )
        await t.keyboard.press("ArrowRight")  # a page turn after the reload: from the cache too
        await shows_page(early.page, 5)
        got = await slide_events(early.page)
        assert got["applied"]["channel"] >= 1 and got["received"]["socket"] <= 1, got
        after = deck_requests(caplog, early.page.url)
        assert after == before, after[len(before):]

        # The lesson keeps its slide events for the replay.
        path = server.settings.data_dir / "lessons" / ROOM / "slide-events.jsonl"
        kinds = [json.loads(line)["type"] for line in path.read_text().splitlines()]
        assert kinds[0] == "deck" and "ink" in kinds and "clear" in kinds
        assert kinds.count("page") >= 5

        for page in (teacher, early, late):
            assert not page.errors, f"{page.name}: {page.errors}"


async def draw_zigzag(page, frame, moves: int) -> None:  # noqa: ANN001 - playwright objects
    """Draw a zigzag across the slide `frame` with the mouse (the pen must be picked)."""
    await frame.scroll_into_view_if_needed()
    box = await frame.bounding_box()
    assert box is not None
    x0, y0 = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5
    await page.mouse.move(x0, y0)
    await page.mouse.down()
    for i in range(1, moves + 1):
        await page.mouse.move(x0 + i * box["width"] * 0.05, y0 + (-1) ** i * 30, steps=3)
        await asyncio.sleep(0.02)
    await page.mouse.up()
