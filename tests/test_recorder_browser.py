"""Recording a Chromium teacher: the teacher page's 录像 button starts and stops recording; the
file holds Chrome's own VP8 and Opus, remuxed, and decodes with av."""

from __future__ import annotations

import asyncio
import json

import av

from tests.chromium import chromium

ROOM = "yandi-g7-math"


async def test_teacher_page_records_its_lesson(server) -> None:
    token = server.mint(ROOM, "teacher", "王老师", participant_id="t", campus="yandi")
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 720}, locale="zh-CN")
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{server.url}/teacher?token={token}")
        await page.wait_for_function("window.tongke && window.tongke.state === 'live'")
        await page.wait_for_selector("#record-toggle[data-recording=no]")
        await page.click("#record-toggle")
        await page.wait_for_selector("#record-toggle[data-recording=yes]")
        await asyncio.sleep(4)
        await page.click("#record-toggle")
        await page.wait_for_selector("#record-toggle[data-recording=no]")
        assert errors == []
    (directory,) = (server.settings.data_dir / "recordings").iterdir()
    meta = json.loads((directory / "meta.json").read_text())
    assert meta["state"] == "done" and meta["teacher"] == "王老师" and meta["campus"] == "yandi"
    video = audio = 0
    with av.open(str(directory / "lesson.webm")) as container:
        width = container.streams.video[0].codec_context.width
        for packet in container.demux():
            if packet.size:
                frames = packet.decode()
                if packet.stream.type == "video":
                    video += len(frames)
                else:
                    audio += len(frames)
    assert width > 0
    # Chromium's fake camera: 30 fps requested, 10+ on two shared cores; Opus every 20 ms.
    assert video >= 10 * (meta["duration"] - 1) and audio >= 40 * (meta["duration"] - 1)
    assert meta["duration"] >= 3
