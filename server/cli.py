"""The `tongke` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConfigError, Settings, load_settings
from .roles import ROLES
from .tokens import TokenIssuer

if TYPE_CHECKING:
    from .timetable import TimetableService


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tongke", description="同课 Tongke")
    parser.add_argument("--config", type=Path, help="TOML file over the embedded defaults")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the platform")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    token = sub.add_parser("token", help="mint a join link token")
    token.add_argument("--room", required=True)
    token.add_argument("--role", required=True, choices=ROLES)
    token.add_argument("--name", required=True)
    token.add_argument("--campus")
    token.add_argument("--consortium", help="the consortium (教联体) id: scopes the replay library")
    token.add_argument("--id", dest="participant_id", help="stable participant id")
    token.add_argument("--ttl-hours", type=float)
    token.add_argument("--url", action="store_true", help="print the page link, not the token")

    publish = sub.add_parser("publish", help="send a lesson from a file, device or synthetic")
    publish.add_argument("--server", help="base URL (default: this config's)")
    publish.add_argument("--room")
    publish.add_argument("--token", required=True)
    publish.add_argument("--source", default="synthetic", help="FILE | DEVICE | synthetic")
    publish.add_argument("--seconds", type=float)

    watch = sub.add_parser("watch", help="join as a classroom and report what arrives")
    watch.add_argument("--server")
    watch.add_argument("--token", required=True)
    watch.add_argument("--seconds", type=float, default=10.0)
    watch.add_argument("--no-decode", action="store_true")

    bench = sub.add_parser("bench", help="benchmarks (print JSON)")
    bench_sub = bench.add_subparsers(dest="bench", required=True)
    fanout = bench_sub.add_parser("fanout", help="forwarding vs re-encoding fan-out")
    fanout.add_argument("--subscribers", type=int, default=10)
    fanout.add_argument("--seconds", type=float, default=20.0)
    fanout.add_argument("--naive-subscribers", type=int, help="default: same as --subscribers")
    fanout.add_argument("--json", action="store_true", help="print only the JSON object")
    from bench.link_cli import add_parser as add_link_parser

    add_link_parser(bench_sub)
    from bench.schedule import add_parser as add_schedule_parser

    add_schedule_parser(bench_sub)
    from bench.record import add_parser as add_record_parser

    add_record_parser(bench_sub)
    from bench.slides import add_parser as add_slides_parser

    add_slides_parser(bench_sub)
    from bench.deckload import add_parser as add_deckload_parser

    add_deckload_parser(bench_sub)

    from scheduler.cli import add_parser as add_timetable_parser

    add_timetable_parser(sub)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    overrides: dict = {}
    if getattr(args, "host", None):
        overrides.setdefault("server", {})["host"] = args.host
    if getattr(args, "port", None):
        overrides.setdefault("server", {})["port"] = args.port
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as exc:
        print(f"配置错误 / config error: {exc}", file=sys.stderr)
        return 2

    if args.command == "serve":
        return _serve(settings)
    if args.command == "token":
        return _token(settings, args)
    if args.command == "publish":
        from .client import run_publish

        base = args.server or settings.base_url
        asyncio.run(run_publish(base, args.token, args.source, args.seconds))
        return 0
    if args.command == "watch":
        from .client import run_watch

        base = args.server or settings.base_url
        asyncio.run(run_watch(base, args.token, args.seconds, decode=not args.no_decode))
        return 0
    if args.command == "schedule":
        from scheduler.cli import run as run_timetable

        return run_timetable(args)
    if args.command == "bench" and args.bench == "record":
        from bench.record import run_record_cli

        return run_record_cli(args)
    if args.command == "bench" and args.bench == "slides":
        from bench.slides import run_slides_cli

        return run_slides_cli(args)
    if args.command == "bench" and args.bench == "deckload":
        from bench.deckload import run_deckload_cli

        return run_deckload_cli(args)
    if args.command == "bench" and args.bench == "schedule":
        from bench.schedule import run_schedule_cli

        return run_schedule_cli(args)
    if args.command == "bench" and args.bench == "link":
        from bench.link_cli import run_link_cli

        return run_link_cli(args)
    if args.command == "bench":
        from bench.fanout import run_fanout_cli

        return run_fanout_cli(args)
    return 2


def _token(settings: Settings, args: argparse.Namespace) -> int:
    issuer = TokenIssuer(settings.secret, settings.token_ttl)
    ttl = int(args.ttl_hours * 3600) if args.ttl_hours else None
    try:
        token = issuer.mint(
            args.room,
            args.role,
            args.name,
            args.participant_id,
            args.campus,
            ttl=ttl,
            consortium=args.consortium,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(page_url(settings, args.role, token) if args.url else token)
    return 0


def page_url(settings: Settings, role: str, token: str) -> str:
    page = "meeting" if role == "member" else role  # a meeting's host: /meeting?token=…
    return f"{settings.base_url}/{page}?token={token}"


def demo_links(
    settings: Settings, timetables: TimetableService | None = None
) -> list[tuple[str, str]]:
    """(label, URL) for the sample consortium's lessons, then the standing links of every
    class and teacher on the timetable (each joins whatever is on now); links last a term."""
    if settings.demo is None:
        return []
    issuer = TokenIssuer(settings.secret, settings.token_ttl)
    # Every demo link carries the demo consortium: its replay library shows that one's only.
    mint = partial(issuer.mint, ttl=120 * 24 * 3600, consortium=settings.demo.id)
    links = []
    for lesson in settings.demo.lessons:
        t = lesson.teacher
        token = mint(lesson.room, "teacher", t["name"], f"{lesson.room}-teacher", t["campus"])
        links.append((f"主讲教师 {t['name']}", page_url(settings, "teacher", token)))
        for i, c in enumerate(lesson.classrooms):
            token = mint(
                lesson.room, "classroom", c["name"], f"{lesson.room}-class{i}", c["campus"]
            )
            links.append((f"接收课堂 {c['name']}", page_url(settings, "classroom", token)))
        token = mint(lesson.room, "observer", "教联体巡课")
        links.append(("巡课（不可见）", page_url(settings, "observer", token)))
    staff = mint("*", "observer", f"{settings.demo.name} 教务")
    links.append(("教务总览（所有课堂的网络状况）", f"{settings.base_url}/overview?token={staff}"))
    if timetables is not None:
        from . import standing

        admin = f"{settings.base_url}/timetable?token={staff}"
        links.append(("统一课表（排课、锁定、编辑）", admin))
        links += standing.links(issuer, timetables, settings.base_url, settings.demo.id)
    return links


def _serve(settings: Settings) -> int:
    from aiohttp import web

    from .app import create_app
    from .timetable_app import TIMETABLE

    app = create_app(settings)

    async def announce(_: web.Application) -> None:
        print(f"\n同课 Tongke 已启动: {settings.base_url}", flush=True)
        if settings.demo is not None:
            print(f"示例教联体: {settings.demo.name}", flush=True)
        for label, url in demo_links(settings, app[TIMETABLE]):
            print(f"  {label}:\n    {url}", flush=True)
        print("按 Ctrl+C 停止。\n", flush=True)

    app.on_startup.append(announce)
    web.run_app(app, host=settings.host, port=settings.port, print=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
