"""`tongke bench deckload`: a classroom prefetches a whole deck while it receives the live
lesson over the emulated rural link (bench/netlab; root needed), paced (ours: the prefetches
carry the classroom's token and the server paces them at the link's spare rate,
server/slides/pacing.py) against unpaced (the baseline: the same requests without a token, as
the classroom page sent them before, as fast as TCP goes), one after the other in one run.

Per mode, on its own link (same seed):
- namespace a: the Tongke server (adaptive, server-made layers: the defaults) with the link
  benchmark's teacher (bench/link_publisher.py: 720p VP8 at 1.2 Mbps, Opus 32 kbps), and a
  teacher that opens a sample deck (bench/sample_deck.py) at page 1;
- namespace b: the classroom (bench/deckload_peer.py) joins at link time JOIN_AT, receives the
  lesson, and WARMUP_S later fetches the deck: page 1 (the room's page) first, then the others.
The lesson's figures (bench/link_metrics.py) cover the --seconds from the start of the fetch,
the same window in both modes; `during_download` covers the fetch itself. Prints one JSON
object.

    tongke bench deckload --json [--scenario rural] [--pages 4] [--seconds 60] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from server.slides.store import DeckStore
from server.tokens import TokenIssuer

from .link import _commit, shifted, stop_process, wait_until, write_config
from .link_metrics import RunLogs, audio_loss, measure, read_captures
from .netlab import Link
from .netlab.link import LinkError
from .netlab.spec import scenario
from .sample_deck import sample_deck

log = logging.getLogger("bench.deckload")

REPO = Path(__file__).resolve().parent.parent
PORT = 8080
ROOM = "bench-deckload"
JOIN_AT = 8.0  # link time the classroom joins
WARMUP_S = 12.0  # then the lesson settles (estimate, layer) before the deck is fetched
MAX_FACTOR = 4.0  # a paced deck may take this many windows before the run gives up on it
SETUP_TIMEOUT = 45.0
MODES = ("paced", "unpaced")
LESSON_KEYS = (
    "frozen_pct", "longest_freeze_s", "fps_shown", "fps_sent", "delay_ms_p50", "delay_ms_p95",
    "audio_loss_pct", "audio_unrecovered_pct", "offered_over_capacity", "keyframes",
    "resolution_share",
)


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser(
        "deckload", help="deck prefetch beside the live lesson, paced vs unpaced (root)"
    )
    p.add_argument("--scenario", default="rural")
    p.add_argument("--pages", type=int, default=4, help="sample deck pages")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="the lesson's window from the start of the fetch")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--only", choices=MODES, help="run one mode only")
    p.add_argument("--out", type=Path, help="keep logs and results here")
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def run_deckload_cli(args: argparse.Namespace) -> int:
    for noisy in ("aioice", "aiortc", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if not args.json:
        log.setLevel(logging.INFO)
    modes = (args.only,) if args.only else MODES
    try:
        result = run_deckload_bench(
            args.scenario, args.pages, args.seconds, args.seed, modes, args.out
        )
    except LinkError as exc:
        print(f"需要 root 权限和网络命名空间 / needs root and network namespaces: {exc}",
              file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


def run_deckload_bench(
    name: str, pages: int, seconds: float, seed: int, modes: tuple[str, ...], out: Path | None
) -> dict[str, Any]:
    base = out or Path(tempfile.mkdtemp(prefix="tongke-bench-deckload-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        store = DeckStore(base / "var" / "decks")  # the server's data dir: rendered once
        manifest, _ = asyncio.run(store.add_bytes(sample_deck(pages), "sample-deck.pdf"))
        sizes = [p["bytes"] for p in manifest["pages"]]
        result: dict[str, Any] = {
            "scenario": name,
            "link": json.loads(scenario(name).to_json())["ab"],
            "seed": seed,
            "commit": _commit(),
            "window_s": seconds,
            "warmup_s": WARMUP_S,
            "deck_pages": len(sizes),
            "deck_bytes": sum(sizes),
            "page_bytes": sizes,
            "publisher": "1 layer 720p VP8 1.2 Mbps + Opus 32k (server-made 360p/180p)",
        }
        for mode in modes:
            log.info("deckload %s: %s", name, mode)
            result[mode] = run_once(name, seed, mode, seconds, manifest["id"], base)
        result["summary"] = {  # the figures to compare, side by side
            key: {m: (result[m]["lesson"] | result[m]).get(key) for m in modes}
            for key in ("frozen_pct", "audio_loss_pct", "delay_ms_p95", "deck_download_s",
                        "current_page_s", "prefetch_kbps")
        }
        (base / "deckload.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
        return result
    finally:
        if out is None:
            shutil.rmtree(base, ignore_errors=True)


def run_once(
    name: str, seed: int, mode: str, seconds: float, deck: str, base: Path
) -> dict[str, Any]:
    run_dir = base / mode
    run_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    issuer = TokenIssuer(secret, 3600)
    spec = shifted(scenario(name), JOIN_AT, seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    frames = run_dir / "publisher-frames.txt"
    received = run_dir / "classroom.json"
    load_before = os.getloadavg()[0]
    longest = WARMUP_S + MAX_FACTOR * seconds
    with Link(spec) as link:
        cfg = write_config(base, secret, True, True, link.addr_a)  # data: base/var
        procs: list[subprocess.Popen[Any]] = []

        def start(ns: str, argv: list[str], logname: str) -> subprocess.Popen[Any]:
            with (run_dir / logname).open("wb") as f:
                p = link.popen_in(ns, argv, cwd=REPO, env=env, stdout=f,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append(p)
            return p

        server_log = run_dir / "server.log"
        start("a", [py, "-m", "server.cli", "--config", str(cfg), "serve"], "server.log")
        wait_until(lambda: "Tongke 已启动".encode() in server_log.read_bytes(), 30, "server",
                   procs)
        pub_log = run_dir / "publisher.log"
        local = f"http://127.0.0.1:{PORT}"
        start("a", [
            py, "-m", "bench.link_publisher", "--url", local,
            "--token", issuer.mint(ROOM, "teacher", "主讲教师", "teacher"),
            "--observer-token", issuer.mint(ROOM, "observer", "巡课"),
            "--seconds", str(JOIN_AT + longest + 60), "--frames", str(frames),
            "--health", str(run_dir / "server-health.jsonl"),
        ], "publisher.log")
        wait_until(lambda: b"published" in pub_log.read_bytes() and frames.stat().st_size > 0,
                   SETUP_TIMEOUT, "publisher", procs)
        opened = link.run_in("a", [
            py, "-m", "bench.deckload_peer", "open", "--url", local,
            "--token", issuer.mint(ROOM, "teacher", "课件", "slides"), "--deck", deck,
        ], cwd=REPO, env=env, capture_output=True, timeout=40)
        if opened.returncode != 0:
            raise RuntimeError(f"opening the deck failed: {opened.stdout!r} {opened.stderr!r}")
        if link.elapsed() > JOIN_AT:
            log.warning("setup took %.1f s, past JOIN_AT", link.elapsed())
        time.sleep(max(0.0, JOIN_AT - link.elapsed()))
        fetch_at = time.monotonic() + WARMUP_S  # a late setup still gets its whole warm-up
        classroom = start("b", [
            py, "-m", "bench.deckload_peer", "classroom", "--url", f"http://{link.addr_a}:{PORT}",
            "--token", issuer.mint(ROOM, "classroom", "烈山湖学校七(1)班", "class1"),
            "--frames", str(frames), "--mode", mode, "--fetch-at", f"{fetch_at:.6f}",
            "--window", str(seconds), "--max", str(MAX_FACTOR * seconds),
            "--out", str(received),
        ], "classroom.log")
        try:
            classroom.wait(timeout=longest + 60)
        except subprocess.TimeoutExpired:
            log.warning("classroom overran; ending it")
        for p in reversed(procs):
            stop_process(p)
        t0 = link.t0
    assert link.log is not None
    rec = json.loads(received.read_text())
    return summarize(rec, read_captures(frames), link.log, t0, seconds, load_before)


def summarize(
    rec: dict[str, Any], captures: dict[int, float], packets: Any, t0: float, seconds: float,
    load_before: float,
) -> dict[str, Any]:
    deck = rec["deck"]
    start, done = deck["start"], deck.get("done")
    fetches = deck["fetches"]

    def lesson(w0: float, w1: float) -> dict[str, Any]:
        metrics = measure(RunLogs(receiver=rec, captures=captures, packets=packets, t0=t0,
                                  window=(w0, w1)))
        # measure() counts audio over the whole reception: the window's packets only
        audio = [ts for ts, mono in zip(rec["audio_ts"], rec["audio_mono"], strict=False)
                 if w0 <= mono <= w1]
        metrics |= audio_loss(audio)
        out = {k: metrics.get(k) for k in LESSON_KEYS}
        out["estimate_kbps_p50"] = metrics.get("server_view", {}).get("estimate_kbps_p50")
        out["qdelay_ms"] = metrics["link_ab"].get("qdelay_ms")
        return out

    first = fetches[0] if fetches else None
    prefetched = [f for f in fetches[1:] if f[4] == 200]
    prefetch_s = (prefetched[-1][1] - prefetched[0][0]) if prefetched else None
    out: dict[str, Any] = {
        "deck_download_s": round(done - start, 2) if done is not None else None,
        "deck_bytes_fetched": sum(f[3] for f in fetches if f[4] == 200),
        "current_page_s": round(first[1] - first[0], 3) if first else None,
        "prefetch_kbps": round(sum(f[3] for f in prefetched) * 8 / prefetch_s / 1000, 1)
        if prefetch_s else None,
        "pages": [[f[2], round(f[1] - f[0], 2), f[3], f[4], f[5]] for f in fetches],
        "lesson": lesson(start, start + seconds),
        "during_download": lesson(start, done) if done is not None and done - start > 1 else None,
        "load_avg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    return out
