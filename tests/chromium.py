"""Debian's Chromium under Playwright, launched the way that works on these machines
(see DESIGN.md, "Testing on these machines"). Never `playwright install`."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from tests.conftest import require

CHROMIUM = os.environ.get("TONGKE_CHROMIUM", "/usr/bin/chromium")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream=fps=30",
    "--use-fake-ui-for-media-stream",
    # without it ICE never completes on loopback
    "--allow-loopback-in-peer-connection",
    # a classroom display is clicked once by a person; a test cannot
    "--autoplay-policy=no-user-gesture-required",
]


def require_chromium() -> None:
    available = os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM) is not None
    require(available, f"Chromium not found at {CHROMIUM} (apt-get install chromium)")


@asynccontextmanager
async def chromium(
    executable: str | None = None, extra_flags: Sequence[str] = ()
) -> AsyncIterator:
    """A running browser (playwright.async_api.Browser). `executable`: a wrapper that runs
    Chromium elsewhere (bench/netlab's `Link.wrap("b", CHROMIUM)`: inside a namespace)."""
    require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=executable or CHROMIUM, args=[*FLAGS, *extra_flags], headless=True
        )
        try:
            yield browser
        finally:
            await browser.close()
