"""Per-subscriber adaptation through the real server and the emulated link (issue 3).

One lesson (bench/link_publisher.py: 720p VP8 + Opus, encoded by us), two classrooms
(bench/link_receiver.py): one behind a 300 kbps / 75 ms / 3% loss link, one on the SFU's own
clean loopback. The slow one must stay on a low layer and keep showing video; the fast one
must be on the top layer. Every part runs as its own process, as in `tongke bench link`.
Needs root and network namespaces (CI has both).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.link import stop_process, wait_until, write_config
from bench.link_metrics import RunLogs, measure, read_captures
from bench.netlab import Link, netns
from bench.netlab.spec import scenario
from server.tokens import TokenIssuer
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
PORT = 8080
LESSON_S = 36.0  # each classroom watches this long
SETTLE_S = 12.0  # the layers have settled by then (estimates start at 300 kbps)
LAST_S = 15.0  # the fast classroom must be on the top layer for all of the last 15 s
ROOM = "adapt"


@pytest.fixture(scope="module")
def lesson(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Run the lesson once for every test here; what each classroom saw, after SETTLE_S."""
    ok, why = netns.available()
    require(os.geteuid() == 0 and ok, f"needs root and network namespaces: {why}")
    tmp_path = tmp_path_factory.mktemp("adapt")
    secret = secrets.token_urlsafe(24)
    issuer = TokenIssuer(secret, 3600)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    frames = tmp_path / "frames.txt"
    health = tmp_path / "health.jsonl"
    out = {"slow": tmp_path / "slow.json", "fast": tmp_path / "fast.json"}
    procs: list[subprocess.Popen[Any]] = []
    with Link(scenario("rural").with_seed(3)) as link:

        def start(ns: str, argv: list[str], name: str) -> subprocess.Popen[Any]:
            log = (tmp_path / f"{name}.log").open("wb")
            p = link.popen_in(
                ns,
                argv,
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
            procs.append(p)
            return p

        cfg = write_config(tmp_path, secret, adaptive=True, ladder=True, addr=link.addr_a)
        events = tmp_path / "sfu-events.json"
        start(
            "a",
            [
                PY,
                "-m",
                "bench.sfu_probe",
                "--events",
                str(events),
                "--",
                "--config",
                str(cfg),
                "serve",
            ],
            "sfu",
        )
        pub_log = tmp_path / "publisher.log"
        start(
            "a",
            [
                PY,
                "-m",
                "bench.link_publisher",
                "--url",
                f"http://127.0.0.1:{PORT}",
                "--token",
                issuer.mint(ROOM, "teacher", "主讲教师", "teacher"),
                "--observer-token",
                issuer.mint(ROOM, "observer", "巡课"),
                "--seconds",
                str(LESSON_S + 40),
                "--frames",
                str(frames),
                "--health",
                str(health),
            ],
            "publisher",
        )
        wait_until(
            lambda: pub_log.exists() and b"published" in pub_log.read_bytes(),
            45,
            "publisher",
            procs,
        )
        watchers = {}
        for name, ns, host in (("slow", "b", link.addr_a), ("fast", "a", "127.0.0.1")):
            watchers[name] = start(
                ns,
                [
                    PY,
                    "-m",
                    "bench.link_receiver",
                    "--url",
                    f"http://{host}:{PORT}",
                    "--token",
                    issuer.mint(ROOM, "classroom", f"{name}班", name),
                    "--seconds",
                    str(LESSON_S),
                    "--frames",
                    str(frames),
                    "--out",
                    str(out[name]),
                ],
                name,
            )
        for p in watchers.values():
            p.wait(timeout=LESSON_S + 40)
        for p in reversed(procs):
            stop_process(p)
    assert link.log is not None and link.t0 is not None

    # The server's own view of each classroom's link, as staff see it (GET /api/rooms).
    polls: dict[str, list[dict[str, Any]]] = {"slow": [], "fast": []}
    for line in health.read_text().splitlines():
        poll = json.loads(line)
        for room in poll["rooms"]:
            for p in room["participants"]:
                if p["id"] in polls and p.get("link"):
                    polls[p["id"]].append({"mono": poll["mono"], **p["link"]})
    result = {}
    for name in ("slow", "fast"):
        received = json.loads(out[name].read_text())
        window = (received["joined_mono"] + SETTLE_S, received["joined_mono"] + LESSON_S)
        logs = RunLogs(
            received,
            read_captures(frames),
            link.log,
            link.t0,
            window,
            sfu_events=json.loads(events.read_text()),
        )
        result[name] = measure(logs)
        late = [h for h in polls[name] if h["mono"] >= window[0]]
        result[name]["layers_seen"] = sorted({str(v) for h in late for v in h["layers"].values()})
        last = [h for h in late if h["mono"] >= window[1] - LAST_S]
        result[name]["layers_last"] = sorted({str(v) for h in last for v in h["layers"].values()})
        result[name]["qualities"] = sorted({h["quality"] for h in late})
        result[name]["estimates_kbps"] = [h["estimate_kbps"] for h in late]
    print(json.dumps(result, ensure_ascii=False, indent=1))
    return result


def _shown_share(watcher: dict[str, Any]) -> float:
    """Frames shown per frame the teacher's encoder produced (it shares two cores with
    everything else here, so its own rate is the yardstick, not 30 fps)."""
    return watcher["fps_shown"] / max(watcher["fps_sent"], 1e-9)


def test_slow_classroom_stays_on_a_low_layer_and_live(lesson):
    slow = lesson["slow"]
    assert slow["layers_seen"] and set(slow["layers_seen"]) <= {"l", "m"}, slow
    assert "720p" not in slow["resolution_share"], slow
    # Live, not smooth: the freeze targets are the benchmark's (BENCHMARKS.md), not CI's.
    assert _shown_share(slow) >= 0.2, slow
    assert slow["longest_freeze_s"] < 8, slow
    assert slow["audio_loss_pct"] is not None and slow["audio_loss_pct"] < 5, slow
    assert set(slow["qualities"]) & {"weak", "poor"}, "the classroom must see its link is weak"


def test_slow_classroom_does_not_hold_back_the_fast_one(lesson):
    """Whatever the slow classroom gets, the fast one keeps a smooth picture."""
    fast = lesson["fast"]
    assert _shown_share(fast) >= 0.7, fast
    assert fast["longest_freeze_s"] < 3, fast
    assert fast["delay_ms_p95"] is not None and fast["delay_ms_p95"] < 600, fast


def test_fast_classroom_gets_the_top_layer(lesson):
    """A subscriber starts on the lowest layer; on a clean path it must climb to the top."""
    fast = lesson["fast"]
    assert fast["layers_last"] == ["h"], fast
    assert fast["resolution_share"].get("720p", 0) >= 0.9, fast
