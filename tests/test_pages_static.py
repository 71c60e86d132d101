"""The pages and their ES modules load in Chromium without a syntax or runtime error.

Served by a tiny static server laid out like the real one (/teacher, /classroom, /observer,
/static/), so the absolute module paths resolve; no Tongke server behind it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp import web
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.chromium import chromium
from tests.conftest import free_port

WEB = Path(__file__).resolve().parent.parent / "web"
# Pages that run a signalling session (window.tongke); every page in web/ gets the load test.
SESSION_PAGES = ("teacher", "classroom", "observer")
PAGES = tuple(sorted(p.stem for p in WEB.glob("*.html")))


@pytest.fixture
async def static_url():
    app = web.Application()
    for page in PAGES:
        app.router.add_get(f"/{page}", _page(page))
    app.router.add_get("/", _blank)
    app.router.add_static("/static/", WEB)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _page(name: str):
    async def handler(request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / f"{name}.html")

    return handler


async def _blank(request: web.Request) -> web.Response:
    return web.Response(text="<!doctype html><meta charset=utf-8>", content_type="text/html")


def watch(page) -> dict[str, list[str]]:
    """Everything that went wrong on a page: uncaught errors, console errors, failed loads."""
    seen: dict[str, list[str]] = {"errors": [], "console": [], "failed": []}
    page.on("pageerror", lambda exc: seen["errors"].append(str(exc)))
    page.on(
        "console",
        lambda msg: seen["console"].append(msg.text) if msg.type == "error" else None,
    )
    page.on("requestfailed", lambda req: seen["failed"].append(req.url))
    page.on(
        "response",
        lambda resp: (
            seen["failed"].append(f"{resp.status} {resp.url}")
            if resp.status >= 400 and "/static/" in resp.url
            else None
        ),
    )
    return seen


async def test_every_module_parses_and_links(static_url):
    """Import each module on its own: a syntax error or a bad import in any of them fails."""
    modules = sorted(p.name for p in (WEB / "js").glob("*.js"))
    assert {"signalling.js", "teacher.js", "classroom.js", "observer.js"} <= set(modules)
    # a page's own module starts the page when imported (tested below); the rest must import
    # cleanly on their own
    libraries = [m for m in modules if m.removesuffix(".js") not in PAGES]
    async with chromium() as browser:
        page = await browser.new_page()
        seen = watch(page)
        await page.goto(f"{static_url}/")
        results = await page.evaluate(
            """async (mods) => {
                const out = {};
                for (const m of mods) {
                    try { out[m] = Object.keys(await import(`/static/js/${m}`)).length; }
                    catch (e) { out[m] = `${e.name}: ${e.message}`; }
                }
                return out;
            }""",
            libraries,
        )
    bad = {m: r for m, r in results.items() if not isinstance(r, int) or r == 0}
    assert not bad, f"modules that failed to import or export nothing: {bad}"
    assert not seen["errors"], seen["errors"]


@pytest.mark.parametrize("name", PAGES)
async def test_page_loads_without_errors(static_url, name):
    async with chromium() as browser:
        page = await browser.new_page()
        seen = watch(page)
        await page.goto(f"{static_url}/{name}")
        await page.wait_for_load_state("networkidle")
        banner = await page.inner_text("#banner .banner-state")
        assert banner.strip(), f"{name}: empty status banner"
        assert not seen["failed"], seen["failed"]
        assert not seen["errors"], seen["errors"]


@pytest.mark.parametrize("name", SESSION_PAGES)
async def test_session_page_explains_a_missing_token(static_url, name):
    async with chromium() as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 720})
        page = await context.new_page()
        seen = watch(page)
        await page.goto(f"{static_url}/{name}")
        # The page module ran: it exposes itself and, with no token, ends with a reason.
        try:
            await page.wait_for_function(
                "window.tongke && window.tongke.state === 'ended'", timeout=10_000
            )
        except PlaywrightTimeout:
            pytest.fail(f"{name} page never started: {seen}")
        assert await page.evaluate("window.tongke.role") == name
        banner = await page.inner_text("#banner .banner-state")
        assert banner == "已结束"
        notices = await page.inner_text("#notices")
        assert "链接不完整" in notices
        # Everything the page loads, it finds; nothing threw.
        assert not seen["failed"], seen["failed"]
        assert not seen["errors"], seen["errors"]
        syntax = [c for c in seen["console"] if "SyntaxError" in c]
        assert not syntax, syntax
        await context.close()
