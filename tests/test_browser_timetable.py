"""The timetable in real Chromium against the real server: the staff page (统一课表) runs the
matcher and shows the week, locks a lesson by a click and refuses a bad edit naming its line;
a classroom's standing link counts down when nothing is on and joins the lesson on now."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from scheduler.slots import Slot
from server import standing
from server.timetable import TZ, Timetable, room_name
from server.timetable_app import TIMETABLE
from tests.chromium import chromium
from tests.conftest import make_settings, running

CID = "suixian-yandi"
KLASS = "lieshanhu-7-1"
MONDAY = dt.date(2027, 3, 1)


def watch(page) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


async def test_admin_page_runs_the_matcher_and_shows_the_week(tmp_path: Path, artifacts: Path):
    async with running(make_settings(tmp_path, ladder=False)) as srv, chromium() as browser:
        staff = srv.mint("*", "observer", "教务处")
        context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
        page = await context.new_page()
        errors = watch(page)
        await page.goto(f"{srv.url}/timetable?token={staff}")
        await page.wait_for_function(
            "document.querySelector('#banner .banner-state').textContent === '课表已载入'",
            timeout=15_000,
        )
        await page.select_option("#consortium", CID)  # other samples may come first
        await page.wait_for_function(
            "document.querySelector('#consortium-name').textContent === '炎帝学校教联体'"
        )
        # The greedy plan the server made at start, seen from the first campus.
        assert "快速预排" in await page.inner_text("#plan-status")
        assert int(await page.get_attribute("#week", "data-entries")) > 0

        await page.click("#solve-btn")
        await page.wait_for_selector("#progress:not([hidden])", timeout=5_000)
        assert "快速预排：已排" in await page.inner_text("#progress-greedy")
        await page.wait_for_selector("#progress[data-state=done]", timeout=30_000)
        assert "已证明最优" in await page.inner_text("#progress-cpsat")
        await page.wait_for_selector("#plan-status[data-optimal=yes]", timeout=5_000)
        assert "已证明最优" in await page.inner_text("#plan-status")
        cells = await page.locator("#week td .tt-entry").count()
        assert cells == int(await page.get_attribute("#week", "data-entries")) > 0
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None and tt.plan.proven_optimal

        # A class's week: only its lessons, at its own bells.
        await page.select_option("#view-kind", "class")
        await page.select_option("#view-id", "lishan-no3-7-1")
        await page.wait_for_function(
            "[...document.querySelectorAll('#week .tt-entry-who')].every("
            "e => e.textContent.includes('厉山镇第三初级中学七(1)班'))"
        )
        await page.screenshot(path=str(artifacts / "timetable-admin.png"), full_page=True)

        # Lock a lesson by clicking it; it is marked and listed, and the server holds it.
        entry = page.locator("#week .tt-entry[data-locked='0']").first
        item = await entry.get_attribute("data-item")
        await entry.click()
        await page.wait_for_selector(f"#week .tt-entry[data-item='{item}'][data-locked='1']")
        listed = await page.inner_text(f"#locks li[data-item='{item}']")
        assert tt.item_name(item) in listed and "解除" in listed
        assert [lk.item for lk in tt.locks] == [item]

        # A bad edit: the page shows the error with its line; nothing changed on the server.
        source = tt.source
        await page.click(".tt-source summary")
        await page.fill("#source", source.replace('teacher = "liu"', 'teacher = "nobody"'))
        await page.click("#save-btn")
        await page.wait_for_selector(".source-status[data-kind=error]")
        status = await page.inner_text(".source-status")
        assert "没有任何改动" in status and "行" in status and "nobody" in status
        assert tt.source == source
        assert not errors, errors
        await context.close()


def first_streamed_lesson(tt: Timetable) -> tuple[Slot, dt.date, dt.datetime]:
    """KLASS's first streamed lesson of the sample week: (lesson, its day, its bell)."""
    streamed = [s for s in tt.plan.lessons if not tt.consortium.courses[s.item].local]
    lesson = min((s for s in streamed if any(k == KLASS for k, _ in s.class_periods)),
                 key=lambda s: (s.day, s.start))
    day = MONDAY + dt.timedelta(days=lesson.day - 1)
    bell = dt.datetime.combine(day, dt.time(lesson.start // 60, lesson.start % 60), TZ)
    return lesson, day, bell


async def test_standing_link_counts_down_then_joins(tmp_path: Path, artifacts: Path):
    clock = [dt.datetime(2027, 3, 1, 0, 0, tzinfo=TZ)]
    settings = make_settings(tmp_path, ladder=False)
    async with running(settings, now=lambda: clock[0]) as srv, chromium() as browser:
        tt = srv.app[TIMETABLE].get(CID)
        assert tt is not None
        lesson, day, bell = first_streamed_lesson(tt)
        token = standing.mint(srv.issuer, tt, "class", KLASS)
        context = await browser.new_context(viewport={"width": 1280, "height": 720}, locale="zh-CN")
        page = await context.new_page()
        errors = watch(page)

        # Ten minutes before the bell: the countdown, ticking.
        clock[0] = bell - dt.timedelta(minutes=10)
        await page.goto(f"{srv.url}/class/{KLASS}?token={token}")
        await page.wait_for_selector("#standing[data-state=waiting]", timeout=10_000)
        text = await page.inner_text("#standing")
        assert "下一节" in text and ("还有 10:00" in text or "还有 09:5" in text), text
        first = await page.inner_text(".standing-countdown")
        await page.wait_for_function(
            f"document.querySelector('.standing-countdown').textContent !== {first!r}",
            timeout=5_000,
        )
        await page.screenshot(path=str(artifacts / "standing-countdown.png"))

        # The bell: a reload asks again and joins the lesson's room as the class.
        clock[0] = bell + dt.timedelta(minutes=1)
        await page.reload()
        await page.wait_for_function(
            "window.tongke && window.tongke.state === 'live'", timeout=20_000
        )
        room = srv.rooms.get(room_name(lesson.item, day, lesson.start))
        assert room is not None
        names = [p.identity.name for p in room.participants.values()]
        assert tt.consortium.classes[KLASS].name in names
        assert await page.is_hidden("#standing")
        assert not errors, errors
        await context.close()
