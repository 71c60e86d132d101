"""The staff overview page in Chromium: live rooms, each classroom's link health."""

from __future__ import annotations

import asyncio

from media.synthetic import SyntheticVideoTrack, ToneAudioTrack
from server.client import Participant
from tests.chromium import chromium


async def test_overview_shows_every_live_classroom_and_its_link(server, artifacts):
    teacher = Participant()
    await teacher.connect(server.url, server.mint("g7-math", "teacher", "王老师"))
    await teacher.join()
    await teacher.publish({"camera": SyntheticVideoTrack(320, 180), "mic": ToneAudioTrack()})
    classroom = Participant(encoded=True)
    await classroom.connect(server.url, server.mint("g7-math", "classroom", "烈山湖学校七(1)班"))
    await classroom.join()
    await classroom.wait_track("camera")
    await asyncio.sleep(2.5)  # one `link` report at least
    staff = server.mint("*", "observer", "教务处")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.goto(f"{server.url}/overview?token={staff}")
        row = page.locator("tr[data-participant]", has_text="烈山湖学校七(1)班")
        await row.wait_for(timeout=10_000)
        await page.wait_for_function(
            "document.querySelector('#banner').dataset.state === 'live'", timeout=10_000
        )
        cells = await row.locator("td").all_inner_texts()
        assert cells[1] == "接收课堂"
        assert cells[2] in ("良好", "一般", "较差")  # the server's view of its downlink
        assert cells[3].endswith("kbps")
        assert "王老师" in await page.locator("section.room").inner_text()
        await page.screenshot(path=str(artifacts / "overview.png"))
        # a classroom link is not a staff link
        bad = await browser.new_page()
        await bad.goto(f"{server.url}/overview?token={server.mint('g7-math', 'classroom', 'x')}")
        await bad.wait_for_function(
            "document.querySelector('#banner').dataset.state === 'ended'", timeout=10_000
        )
    for p in (classroom, teacher):
        await p.close()
