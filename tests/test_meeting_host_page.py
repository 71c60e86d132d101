"""The meeting page's host hand-over in Chromium: the host sees 设为主持人 beside the other
member in the member list (参会老师), the member does not; after the click the member's page
shows the host's buttons at once and mutes the former host, whose page obeys."""

from __future__ import annotations

from tests.chromium import chromium
from tests.test_meeting_page import open_member, until

HOST = ("teacher", "炎帝学校 王老师", "host", "yandi")
MEMBER = ("member", "烈山湖学校 李老师", "m1", "lieshanhu")
HAND_OVER = "#members li[data-participant={}] [data-action=host]"


async def test_the_host_hands_over_from_the_member_list(server) -> None:
    async with chromium() as browser:
        host, member = [await open_member(browser, server, w) for w in (HOST, MEMBER)]
        for page in (host, member):
            await until(page, "window.tongke && window.tongke.state === 'live'")
            await until(page, "window.tongke.session.roomState.host === 'host'")
        await host.wait_for_selector(HAND_OVER.format("m1"))
        assert "王老师" in await member.text_content("#host-line")
        assert await member.locator("#members [data-action=host]").count() == 0
        assert await member.locator(".tile [data-action=mute]:visible").count() == 0

        await host.click(HAND_OVER.format("m1"))
        for page in (host, member):
            await until(page, "window.tongke.session.roomState.host === 'm1'")
        await member.wait_for_selector(HAND_OVER.format("host"))
        assert "李老师" in await host.text_content("#host-line")
        assert await host.locator("#members [data-action=host]").count() == 0
        assert await host.is_visible("#hand") and not await host.is_visible("#next-speaker")
        assert await member.is_visible("#next-speaker")

        # The new host's controls work at once: it mutes the former host.
        await member.click(".tile[data-participant=host] [data-action=mute]")
        await until(host, "document.querySelector('#mic-state').textContent.includes('静音')")
        assert await host.evaluate("window.tongke.local.mic.enabled") is False
        for page in (host, member):
            assert page.errors == []
