"""A deck prepared ahead of a lesson, in real Chromium against the real server with a fake
timetable clock: the teacher's standing page (counting down) attaches a deck to the coming
lesson; the class's standing page, counting down to that lesson, fetches the deck (manifest,
pages, thumbnails) into its HTTP cache; when the lesson opens the page joins on page 1 and the
server sees no request for the deck again (counted in its access log). And the teacher page
gets its deck, page and ink back after the room emptied."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from bench.sample_deck import sample_deck
from server import standing
from server.timetable import JOIN_EARLY, TZ, room_name
from server.timetable_app import TIMETABLE
from tests.chromium import chromium
from tests.conftest import make_settings, running
from tests.test_browser_lesson import ROOM, TEACHER, open_page
from tests.test_browser_slides import blue_pixels, draw_zigzag, shows_page
from tests.test_browser_timetable import first_streamed_lesson

CID = "suixian-yandi"
KLASS = "lieshanhu-7-1"
MONDAY = dt.date(2027, 3, 1)
PAGES = 5


def watch(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def deck_requests(caplog, token: str) -> list[str]:
    """Every deck file the server sent to the page whose URL holds `token` (its Referer)."""
    return [
        m for r in caplog.records
        if r.name == "aiohttp.access" and "/decks/" in (m := r.getMessage()) and token in m
    ]


async def test_prepared_deck_is_fetched_before_the_lesson_and_not_again(
    tmp_path: Path, artifacts: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings, now=lambda: clock[0]) as srv, chromium() as browser:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        lesson, day, bell = first_streamed_lesson(tt)
        room = room_name(lesson.item, day, lesson.start)
        teacher_id = tt.consortium.courses[lesson.item].teacher
        pdf = tmp_path / "第三课 二次函数.pdf"
        pdf.write_bytes(sample_deck(PAGES))
        not_a_deck = tmp_path / "notes.txt"
        not_a_deck.write_text("这不是课件")

        # Ten minutes before: the teacher's standing page counts down and lists the lesson.
        clock[0] = bell - dt.timedelta(minutes=10)
        context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
        teacher = await context.new_page()
        teacher_errors = watch(teacher)
        token = standing.mint(srv.issuer, tt, "teacher", teacher_id)
        await teacher.goto(f"{srv.url}/teach/{teacher_id}?token={token}")
        await teacher.wait_for_selector("#standing[data-state=waiting]", timeout=10_000)
        row = teacher.locator(f"#lesson-decks li[data-room='{room}']")
        await row.wait_for(timeout=10_000)
        assert "未准备课件" in await row.inner_text()

        # A file that is not a deck: refused with its reason, nothing attached.
        async with teacher.expect_file_chooser() as chosen:
            await row.locator(".lesson-deck-choose").click()
        await (await chosen.value).set_files(str(not_a_deck))
        await teacher.wait_for_function(
            "document.querySelector('#lesson-decks-status').textContent.includes('只能上传')",
            timeout=10_000,
        )
        assert await row.get_attribute("data-deck") == ""

        # The deck: uploaded, attached, listed with its name and pages.
        async with teacher.expect_file_chooser() as chosen:
            await row.locator(".lesson-deck-choose").click()
        await (await chosen.value).set_files(str(pdf))
        await teacher.wait_for_selector(
            f"#lesson-decks li[data-room='{room}']:not([data-deck=''])", timeout=30_000
        )
        deck = await teacher.get_attribute(f"#lesson-decks li[data-room='{room}']", "data-deck")
        assert f"（{PAGES} 页）" in await row.inner_text()
        await teacher.screenshot(path=str(artifacts / "lesson-decks-teacher.png"))
        assert not teacher_errors, teacher_errors
        await context.close()

        # The class's standing page a few seconds before the room opens: it counts down and
        # fetches the deck meanwhile, every file once.
        clock[0] = bell - JOIN_EARLY - dt.timedelta(seconds=6)
        class_token = standing.mint(srv.issuer, tt, "class", KLASS)
        context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
        page = await context.new_page()
        errors = watch(page)
        await page.goto(f"{srv.url}/class/{KLASS}?token={class_token}")
        await page.wait_for_selector("#standing[data-deck=ready]", timeout=20_000)
        assert "本节课件已准备好" in await page.inner_text("#standing")
        await page.screenshot(path=str(artifacts / "lesson-decks-class-countdown.png"))
        fetched = deck_requests(caplog, class_token)
        assert len(fetched) == 1 + 2 * PAGES, fetched  # manifest, pages, thumbnails
        assert all(deck in line for line in fetched)

        # The room opens: the same page joins the lesson by itself, on the deck's page 1,
        # without asking the server for any of it again.
        clock[0] = bell - dt.timedelta(minutes=2)
        await page.wait_for_function(
            "window.tongke && window.tongke.state === 'live'", timeout=30_000
        )
        await page.locator("#slide-view[data-page='1'][data-shown='1']").wait_for(
            state="attached", timeout=15_000
        )
        assert await page.is_hidden("#standing") and await page.is_visible("#slide-stage")
        live = srv.rooms.get(room)
        assert live is not None and live.slides.deck["id"] == deck and live.slides.page == 1
        assert await page.evaluate("window.tongke.slides.deck.id") == deck
        await asyncio.sleep(3)  # the slide view's own background fetch of the other pages
        assert deck_requests(caplog, class_token) == fetched
        await page.screenshot(path=str(artifacts / "lesson-decks-class-joined.png"))
        assert not errors, errors
        await context.close()


async def test_teacher_page_gets_its_ink_back_after_everyone_left(server, artifacts: Path):
    """The teacher alone draws on page 2, the page closes (the room empties and is dropped),
    the teacher comes back: deck, page and ink as they were, from the lesson's slide events."""
    async with chromium() as browser:
        teacher = await open_page(browser, server, TEACHER)
        await teacher.wait_live()
        t = teacher.page
        await t.set_input_files(
            "#deck-file",
            files=[{"name": "二次函数.pdf", "mimeType": "application/pdf",
                    "buffer": sample_deck(3)}],
        )
        await shows_page(t, 1, timeout_ms=30_000)
        await t.locator("#thumbs img.thumb[data-page='2']").click()
        await shows_page(t, 2)
        assert await blue_pixels(t) == 0

        await t.click(".swatch[data-color='#1e88e5']")
        await draw_zigzag(t, t.locator("#teacher-slide .slide-frame"), 10)
        room = server.rooms.get(ROOM)
        for _ in range(100):  # the stroke's last piece reaches the server
            if room.slides.ink and len(room.slides.ink[-1]["points"]) > 20:
                break
            await asyncio.sleep(0.05)
        drawn = room.slides.ink
        assert drawn and room.slides.page == 2
        assert not teacher.errors, teacher.errors
        await t.context.close()
        for _ in range(100):
            if server.rooms.get(ROOM) is None:
                break
            await asyncio.sleep(0.05)
        assert server.rooms.get(ROOM) is None, "the room outlived its last participant"

        again = await open_page(browser, server, TEACHER)
        await again.wait_live()
        await shows_page(again.page, 2)
        ink = await again.page.evaluate("window.tongke.slides.ink")
        assert ink == drawn
        await asyncio.sleep(0.3)  # the canvas is drawn; the screenshot sees it
        assert await blue_pixels(again.page) > 300
        assert "第 2 / 3 页" in await again.page.inner_text("#page-label")
        await again.page.screenshot(path=str(artifacts / "teacher-ink-resumed.png"))
        assert not again.errors, again.errors
