"""A Chromium classroom page behind an emulated rural link (issue 3): with our adaptation the
teacher's picture stays live; with stock forwarding (the baseline) it freezes.

Per mode, one `rural` link (bench/netlab: 300 kbps, 75 ms one way, 3% loss, 300 ms queue):
namespace a holds the SFU (`server.cli serve`, its own process) and the synthetic teacher
(bench/link_publisher.py: 720p VP8 at 1.2 Mbps + Opus); namespace b holds headless Chromium
(launched inside it through `Link.wrap`) showing the real classroom page. What is asserted comes
from the page's own getStats(), sampled once a second: `framesDecoded` growing, `freezeCount`,
`totalFreezesDuration` (Chrome counts a freeze only once it has ended, so a stall still open at
the end is added from the samples), `frameHeight`; the steady state (from STEADY_FROM_S) is
judged apart from the whole run. The samples and a screenshot per mode go to test-artifacts/.
Needs root, network namespaces, Chromium and a CPU not starved by other work (the teacher's
encoder near its 30 fps; one re-run allowed): skipped locally without them, failed under CI.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import secrets
import subprocess
import sys
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from bench.link import PORT, stop_process, wait_until, write_config
from bench.netlab import Link, netns
from bench.netlab.spec import scenario
from server.tokens import TokenIssuer
from tests.chromium import CHROMIUM, chromium, require_chromium
from tests.conftest import ARTIFACTS, require

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
ROOM = "rural-browser"
TEACHER = "teacher"
WATCH_S = 45  # samples per mode, one a second, from the moment the page is opened
# The steady state: the start-up is over (first frames ~8 s after opening the page; then, in
# about half of the runs here, a stall of 3-6 s while NACKs go unanswered, see the report).
STEADY_FROM_S = 18.0
FIRST_FRAME_S = 15.0  # ours must show the teacher within this long of opening the page
STEADY_FROZEN_MAX = 0.2  # share of the steady state frozen (measured: see the report)
WHOLE_FROZEN_MAX = 0.3  # ... and of the whole run from the first frame (start-up stall)
STARVED_FRAMES = 10  # the teacher encodes 30 fps; fewer than this in a second: CPU-starved
MIN_TEACHER_FPS = 24.0  # below this over a run, the machine was too busy to judge the link
ATTEMPTS = 2  # a run whose teacher was starved by other work on the machine is run again
MODES = {"ours": (True, True), "baseline": (False, False)}  # (adaptive, ladder), as bench/link

# What one sample reads from the page: the teacher's camera and microphone as received, and
# what the page tells the class about its link.
SAMPLE_JS = """async (teacher) => {
    const rows = await window.tongke.inboundStats();
    const pick = (source) =>
        rows.find((r) => r.participant === teacher && r.source === source) || null;
    const link = window.tongke.session.link;
    // what the stats summary leaves out: how the page asked for repairs (NACK, PLI)
    const camera = pick('camera');
    const pc = window.tongke.session.subscribePc;
    if (camera && pc) {
        (await pc.getStats()).forEach((s) => {
            if (s.type === 'inbound-rtp' && s.mid === camera.mid) {
                Object.assign(camera, { nackCount: s.nackCount, pliCount: s.pliCount });
            }
        });
    }
    return {
        state: window.tongke.state,
        camera,
        mic: pick('mic'),
        server_layers: link ? link.layers : null,
        health: document.querySelector('#health')?.dataset.level ?? null,
    };
}"""


def _sample(t: float, raw: dict[str, Any]) -> dict[str, Any]:
    cam = raw.get("camera") or {}
    mic = raw.get("mic") or {}
    return {
        "t": round(t, 2),
        "state": raw.get("state"),
        "framesDecoded": cam.get("framesDecoded", 0),
        "freezeCount": cam.get("freezeCount", 0),
        "totalFreezesDuration": cam.get("totalFreezesDuration", 0.0),
        "frameHeight": cam.get("frameHeight"),
        "framesReceived": cam.get("framesReceived", 0),
        "keyFramesDecoded": cam.get("keyFramesDecoded", 0),
        "packetsLost": cam.get("packetsLost", 0),
        "nackCount": cam.get("nackCount", 0),
        "pliCount": cam.get("pliCount", 0),
        "bytesReceived": cam.get("bytesReceived", 0),
        "samplesReceived": mic.get("totalSamplesReceived", 0),
        "concealedSamples": mic.get("concealedSamples", 0),
        "server_layers": raw.get("server_layers"),
        "health": raw.get("health"),
    }


def _add_captured(samples: list[dict[str, Any]], frames: Path) -> None:
    """Frames the teacher's encoder had captured by each sample (same monotonic clock in every
    namespace): a stall the source itself had, starved of CPU, shows here."""
    monos = sorted(float(line.split()[1]) for line in frames.read_text().splitlines() if line)
    for s in samples:
        s["captured"] = bisect.bisect_right(monos, s.pop("mono"))


def summarize(samples: list[dict[str, Any]], from_s: float = 0.0) -> dict[str, Any]:
    """Liveness from the page's samples, from the first decoded frame (and `from_s` on).

    A second is `stalled` when framesDecoded did not grow over it, unless the teacher's own
    encoder captured fewer than STARVED_FRAMES in it (then the machine, not the link, stalled
    it: `starved_s`). `frozen_s` is what Chrome's totalFreezesDuration grew by, plus the stall
    still open at the last sample (Chrome counts a freeze only once it has ended).
    `shown_share` treats both modes alike from the moment the page connected (or video began
    to arrive): the share of seconds in which a new frame was decoded."""
    connected = next((i for i, s in enumerate(samples)
                      if s["state"] == "live" or s["bytesReceived"] > 0), len(samples))
    since = [s for s in samples[connected:] if s["t"] >= from_s]
    grew = sum(1 for a, b in pairwise(since) if b["framesDecoded"] > a["framesDecoded"])
    whole = max(samples[-1]["t"] - samples[0]["t"], 1e-9)
    heard = sum(max(0, b["samplesReceived"] - a["samplesReceived"]) for a, b in pairwise(since))
    concealed = sum(max(0, b["concealedSamples"] - a["concealedSamples"])
                    for a, b in pairwise(since))
    out: dict[str, Any] = {
        "from_s": from_s,
        "shown_share": round(grew / max(len(since) - 1, 1), 3),
        "reconnecting_s": sum(1 for s in samples if s["state"] == "reconnecting"),
        "teacher_fps": round((samples[-1]["captured"] - samples[0]["captured"]) / whole, 1),
        "audio_concealed_pct": round(100 * concealed / (heard + concealed), 2)
        if heard + concealed > 0 else None,
    }
    first = next((i for i, s in enumerate(samples)
                  if s["framesDecoded"] > 0 and s["t"] >= from_s), None)
    if first is None or first == len(samples) - 1:
        return {**out, "first_frame_s": None, "live_share": 0.0, "frozen_share": 1.0,
                "heights": [], "health": []}
    seen = samples[first:]
    pairs = list(pairwise(seen))
    starved = [b["captured"] - a["captured"] < STARVED_FRAMES for a, b in pairs]
    stalled = sum(1 for (a, b), st in zip(pairs, starved, strict=True)
                  if not st and b["framesDecoded"] <= a["framesDecoded"])
    judged = len(pairs) - sum(starved)
    last = seen[-1]
    span = last["t"] - seen[0]["t"]

    def grown(key: str) -> float:  # a counter that starts again (new receiver) counts anew
        return sum(b[key] - a[key] if b[key] >= a[key] else b[key] for a, b in pairs)

    last_new = next((b for a, b in reversed(pairs) if b["framesDecoded"] > a["framesDecoded"]),
                    seen[0])
    frozen = grown("totalFreezesDuration") + (last["t"] - last_new["t"])
    return {
        **out,
        "first_frame_s": seen[0]["t"],
        "seconds": len(pairs),
        "starved_s": sum(starved),
        "stalled_s": stalled,
        "live_share": round(1 - stalled / judged, 3) if judged else None,
        "freezes": round(grown("freezeCount")),
        "frozen_s": round(frozen, 2),
        "frozen_share": round(frozen / span, 3),
        "fps": round(grown("framesDecoded") / span, 1),
        "kbps": round(grown("bytesReceived") * 8 / span / 1000),
        "nacks": round(grown("nackCount")),
        "plis": round(grown("pliCount")),
        "heights": sorted({s["frameHeight"] for s in seen if s["frameHeight"]}),
        "health": sorted({s["health"] for s in seen if s["health"]}),
    }


async def _watch_page(link: Link, url: str, mode: str) -> list[dict[str, Any]]:
    flags = [f"--unsafely-treat-insecure-origin-as-secure=http://{link.addr_a}:{PORT}"]
    async with chromium(link.wrap("b", CHROMIUM), flags) as browser:
        context = await browser.new_context(viewport={"width": 1280, "height": 720},
                                            locale="zh-CN")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        opened = time.monotonic()
        await page.goto(url, timeout=30_000)
        await page.wait_for_function("window.tongke !== undefined", timeout=30_000)
        samples = []
        tick = time.monotonic()  # the page has loaded (through the link: a few seconds)
        while tick - opened < WATCH_S:
            tick += 1.0
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
            raw = await page.evaluate(SAMPLE_JS, TEACHER)
            now = time.monotonic()
            samples.append({**_sample(now - opened, raw), "mono": now})
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"classroom-rural-{mode}.png"))
        assert not errors, f"{mode}: page errors {errors}"
        return samples


def run_mode(mode: str, tmp: Path) -> dict[str, Any]:
    """One lesson on its own rural link; the page's per-second samples and their summary."""
    adaptive, ladder = MODES[mode]
    secret = secrets.token_urlsafe(24)
    issuer = TokenIssuer(secret, 3600)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen[Any]] = []
    load = os.getloadavg()[0]
    with Link(scenario("rural").with_seed(3)) as link:

        def start(argv: list[str], name: str) -> subprocess.Popen[Any]:
            with (tmp / f"{name}.log").open("wb") as log:
                p = link.popen_in("a", argv, cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            procs.append(p)
            return p

        cfg = write_config(tmp, secret, adaptive=adaptive, ladder=ladder, addr=link.addr_a)
        start([PY, "-m", "server.cli", "--config", str(cfg), "serve"], "sfu")
        pub_log = tmp / "publisher.log"
        start([
            PY, "-m", "bench.link_publisher", "--url", f"http://127.0.0.1:{PORT}",
            "--token", issuer.mint(ROOM, "teacher", "主讲教师", TEACHER),
            "--seconds", str(WATCH_S + 60), "--frames", str(tmp / "frames.txt"),
        ], "publisher")
        wait_until(lambda: pub_log.exists() and b"published" in pub_log.read_bytes(),
                   45, "publisher", procs)
        token = issuer.mint(ROOM, "classroom", "烈山湖学校七(1)班", "class1")
        url = f"http://{link.addr_a}:{PORT}/classroom?token={token}"
        try:
            samples = asyncio.run(_watch_page(link, url, mode))
        finally:
            for p in reversed(procs):
                stop_process(p)
    _add_captured(samples, tmp / "frames.txt")
    final = link.final_stats or {}

    def carried(direction: str) -> dict[str, Any]:
        d = final.get(direction, {})
        rate = (link.spec.ab if direction == "ab" else link.spec.ba).rate_bps
        return {
            "offered_over_capacity": round(d["offered_bytes"] * 8 / (rate * final["t"]), 2)
            if d and rate and final.get("t") else None,
            "dropped_pkts": d.get("dropped_pkts"),
            "lost_pkts": d.get("lost_pkts"),
        }

    result = {
        "mode": mode,
        "summary": summarize(samples),
        "steady": summarize(samples, STEADY_FROM_S),
        "load_avg_1m": [round(load, 2), round(os.getloadavg()[0], 2)],
        # what the link carried over the whole run: ab to the classroom, ba its uplink
        "link_ab": carried("ab"),
        "link_ba": carried("ba"),
        "samples": samples,
    }
    (ARTIFACTS / f"classroom-rural-{mode}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, ensure_ascii=False))
    return result


def watch(mode: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """run_mode, again if other work on this 2-core machine starved the teacher's encoder."""
    ok, why = netns.available()
    require(os.geteuid() == 0 and ok, f"needs root and network namespaces: {why}")
    require_chromium()
    starved = []
    for _ in range(ATTEMPTS):
        result = run_mode(mode, tmp_path_factory.mktemp(mode))
        if result["summary"]["teacher_fps"] >= MIN_TEACHER_FPS:
            break
        starved.append({"teacher_fps": result["summary"]["teacher_fps"],
                        "load_avg_1m": result["load_avg_1m"]})
    return {**result, "starved_attempts": starved}


@pytest.fixture(scope="module")
def ours(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return watch("ours", tmp_path_factory)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return watch("baseline", tmp_path_factory)


def judgeable(run: dict[str, Any]) -> dict[str, Any]:
    """The run's summary, if the machine let the teacher encode at close to its 30 fps: an
    idle CPU is a real part this test needs (skipped locally without it, failed under CI)."""
    s = run["summary"]
    require(
        s["teacher_fps"] >= MIN_TEACHER_FPS,
        f"{run['mode']}: the teacher encoded only {s['teacher_fps']} fps in every attempt "
        f"(load {run['load_avg_1m']}, {run['starved_attempts']}): the machine was too busy "
        "to judge the link",
    )
    return s


def test_ours_stays_live(ours):
    """After the start-up, the teacher's picture keeps moving; over the whole run it never
    freezes for long."""
    whole, steady = judgeable(ours), ours["steady"]
    assert whole["first_frame_s"] is not None and whole["first_frame_s"] <= FIRST_FRAME_S, whole
    assert steady["live_share"] >= 0.9, steady
    assert steady["frozen_share"] < STEADY_FROZEN_MAX, steady
    assert whole["live_share"] >= 0.8, whole
    assert whole["frozen_share"] < WHOLE_FROZEN_MAX, whole


def test_ours_shows_a_low_layer(ours):
    judgeable(ours)
    heights = ours["steady"]["heights"]
    assert heights and max(heights) <= 360, ours["steady"]


def test_baseline_freezes_where_ours_does_not(ours, baseline):
    o, b = judgeable(ours), judgeable(baseline)
    assert b["shown_share"] <= o["shown_share"] - 0.5, (o, b)
    assert b["frozen_share"] >= max(3 * o["frozen_share"], 0.5), (o, b)


def test_ours_keeps_the_sound(ours, baseline):
    """Audio goes first: ours conceals little of it; stock forwarding behind a flooded queue
    conceals more."""
    o, b = judgeable(ours), judgeable(baseline)
    assert o["audio_concealed_pct"] is not None and o["audio_concealed_pct"] < 3, o
    ours_pct, base_pct = o["audio_concealed_pct"], b["audio_concealed_pct"]
    assert base_pct is None or base_pct > ours_pct, (o, b)


def test_the_page_says_its_link_is_weak(ours):
    """What the class sees of its link (issue 3, item 6): not 良好 on 300 kbps with 3% loss."""
    judgeable(ours)
    health = ours["steady"]["health"]
    assert health and "good" not in health, ours["steady"]
