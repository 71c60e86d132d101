"""A test's view of the signalling socket: wait for the next message of a kind."""

from __future__ import annotations

import asyncio
import json

import aiohttp


async def recv(
    ws: aiohttp.ClientWebSocketResponse, kind: str, timeout: float = 5, *, errors: bool = False
) -> dict:
    """Next message of `kind` (or an error, with `errors`), skipping others."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data = json.loads(msg.data)
            if data["type"] == kind or (errors and data["type"] == "error"):
                return data
