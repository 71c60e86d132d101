"""A research meeting in Chromium: a host and three members from different campuses, each
publishing camera and mic. Everyone sees the others; the one who talks takes the focus on the
others' pages; hands queue in order and the host gives the floor to the first; the host mutes a
member; minutes typed by one appear on another's page and are kept."""

from __future__ import annotations

import asyncio

import aiohttp

from tests.chromium import chromium

ROOM = "math-group"
HOST = ("teacher", "炎帝学校 王老师", "host", "yandi")
MEMBERS = [
    ("member", "烈山湖学校 李老师", "m1", "lieshanhu"),
    ("member", "厉山镇中心学校 张老师", "m2", "lishan-central"),
    ("member", "厉山镇第三初级中学 赵老师", "m3", "lishan-no3"),
]


async def open_member(browser, server, who):
    role, name, pid, campus = who
    page = await browser.new_page(viewport={"width": 1280, "height": 720}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    token = server.mint(ROOM, role, name, participant_id=pid, campus=campus)
    await page.goto(f"{server.url}/meeting?token={token}")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def decoded_from(page) -> set[str]:
    rows = await page.evaluate("window.tongke.inboundStats()")
    return {r["participant"] for r in rows if r.get("kind") == "video" and r.get("framesDecoded")}


async def until(page, expression: str, timeout_s: float = 20) -> None:
    await page.wait_for_function(expression, timeout=timeout_s * 1000)


async def test_a_research_meeting_of_four(server) -> None:
    async with chromium() as browser:
        pages = [await open_member(browser, server, w) for w in (HOST, *MEMBERS)]
        ids = [w[2] for w in (HOST, *MEMBERS)]
        for page in pages:
            await until(page, "window.tongke && window.tongke.state === 'live'")
        # Everyone decodes the other three.
        for _ in range(100):
            seen = [await decoded_from(p) for p in pages]
            if all(s == set(ids) - {me} for s, me in zip(seen, ids, strict=True)):
                break
            await asyncio.sleep(0.3)
        assert all(s == set(ids) - {me} for s, me in zip(seen, ids, strict=True)), seen

        # Only m2 talks (the fake microphone beeps): the others show m2 in focus.
        for page, me in zip(pages, ids, strict=True):
            if me != "m2":
                await page.evaluate("window.tongke.local.mic.enabled = false")
        for page, me in zip(pages, ids, strict=True):
            if me != "m2":
                await until(page, "document.body.dataset.speaker === 'm2'")
                assert await page.locator("#focus .tile[data-participant=m2]").count() == 1

        # Hands: m3 then m1; the host sees the queue in that order and gives m3 the floor.
        host, m1, m2, m3 = pages
        await m3.click("#hand")
        await until(host, "document.querySelectorAll('#queue li').length === 1")
        await m1.click("#hand")
        await until(host, "document.querySelectorAll('#queue li').length === 2")
        queue = await host.eval_on_selector_all(
            "#queue li", "ls => ls.map(l => l.dataset.participant)"
        )
        assert queue == ["m3", "m1"]
        await host.click("#next-speaker")
        await until(m2, "window.tongke.session.roomState.called_on === 'm3'")
        await until(host, "document.querySelectorAll('#queue li').length === 1")
        await until(m1, "document.body.dataset.speaker === 'm3'")  # the floor is shown large

        # The host mutes m1: m1's page says so and its microphone is off.
        await host.click(".tile[data-participant=m1] [data-action=mute]")
        await until(m1, "document.querySelector('#mic-state').textContent.includes('静音')")
        assert await m1.evaluate("window.tongke.local.mic.enabled") is False

        # Minutes typed on m2's page show up on m3's, and are kept on the server.
        await until(m2, "!document.querySelector('#minutes').disabled")
        await m2.fill("#minutes", "主题：一元一次方程的导入\n结论：统一使用生活情境导入")
        await until(m3, "document.querySelector('#minutes').value.includes('生活情境')", 10)
        async with aiohttp.ClientSession() as http:
            token = server.mint(ROOM, "member", "赵老师", participant_id="m3")
            async with http.get(
                f"{server.url}/api/meetings/{ROOM}/minutes", params={"token": token}
            ) as r:
                kept = await r.json()
        assert "生活情境" in kept["text"] and kept["updated_by"] == "厉山镇中心学校 张老师"
        for page in pages:
            assert page.errors == []
