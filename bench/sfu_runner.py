"""The Tongke server as `tongke serve` runs it, plus two benchmark-only endpoints.

- `POST /bench/window` empties the latency samples so that /api/stats percentiles cover only
  the measuring window (the warm-up's first keyframes would otherwise count);
- `GET /bench/settings` says which media features the server runs with, for the report.

    python -m bench.sfu_runner --port N [--config FILE] [--overrides JSON]

FILE is the operator's TOML over the embedded defaults (as `tongke --config`); JSON is a table
merged over both (the benchmark's secret, loopback ICE, scratch data directory).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiohttp import web

from server.app import SETTINGS, STATS, create_app
from server.config import load_settings

MEDIA_FEATURES = ("adaptive", "ladder")  # Settings fields; absent in older servers


async def _window(request: web.Request) -> web.Response:
    request.app[STATS].latency.clear()
    return web.Response(status=204)


async def _settings(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response({name: getattr(settings, name, None) for name in MEDIA_FEATURES})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.sfu_runner")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path)
    parser.add_argument("--overrides", type=json.loads, default={})
    args = parser.parse_args(argv)
    overrides = {**args.overrides}
    overrides["server"] = {**overrides.get("server", {}), "host": "127.0.0.1", "port": args.port}
    settings = load_settings(args.config, overrides)
    app = create_app(settings)
    app.router.add_post("/bench/window", _window)
    app.router.add_get("/bench/settings", _settings)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, shutdown_timeout=2)


if __name__ == "__main__":
    main()
