"""Shared fixtures: a real Tongke server on loopback, tokens, and the CI rule that a test
needing a real part (Chromium, root, redis-server) fails instead of skipping when CI=true."""

from __future__ import annotations

import datetime as dt
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web

from server.app import ROOMS, STATS, create_app
from server.config import Settings, load_settings
from server.tokens import TokenIssuer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TEST_SECRET = "tongke-test-secret-0123456789-abcdef"


def require(condition: bool, why: str) -> None:
    """Skip locally when a real part is missing; under CI=true, fail instead."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI needs this: {why}")
    pytest.skip(why)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    app: web.Application
    settings: Settings
    issuer: TokenIssuer

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    def mint(self, room: str, role: str, name: str, **kw) -> str:
        return self.issuer.mint(room, role, name, **kw)

    @property
    def rooms(self):
        return self.app[ROOMS]

    @property
    def stats(self):
        return self.app[STATS]


def make_settings(tmp_path: Path, **media: bool) -> Settings:
    return load_settings(
        None,
        {
            "server": {"host": "127.0.0.1", "port": free_port()},
            "tokens": {"secret": TEST_SECRET},
            "data": {"dir": str(tmp_path / "var")},
            "media": media,
        },
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Forwarding only: no server-made layers, so nothing on the server ever decodes.
    Tests of the ladder and of adaptation make their own settings."""
    return make_settings(tmp_path, ladder=False)


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[RunningServer]:
    async with running(settings) as srv:
        yield srv


@asynccontextmanager
async def running(
    settings: Settings, now: Callable[[], dt.datetime] | None = None
) -> AsyncIterator[RunningServer]:
    """`now`: the timetable's clock, for tests that need a lesson to be on."""
    app = create_app(settings, now)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    await site.start()
    try:
        yield RunningServer(
            settings.base_url, app, settings, TokenIssuer(settings.secret, settings.token_ttl)
        )
    finally:
        await runner.cleanup()


@pytest.fixture
def server_url(server: RunningServer) -> str:
    return server.url


@pytest.fixture
def mint(server: RunningServer) -> Callable[..., str]:
    return server.mint


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
