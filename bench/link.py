"""`tongke bench link`: a synthetic lesson through the SFU to a classroom behind an emulated
rural link, with our adaptation and with stock aiortc forwarding (the baseline).

Per seed and mode, one emulated link (bench/netlab) with:
- namespace a: the SFU (`python -m server.cli serve`, its own process) and the teacher
  (bench/link_publisher.py: 720p VP8 at 1.2 Mbps and Opus at 32 kbps with FEC, encoded by us);
- namespace b: the classroom (bench/link_receiver.py), joining at link time JOIN_AT, when the
  scenario's schedule (shifted by JOIN_AT) starts.
Modes: ours = `[media] adaptive` and `ladder` on; baseline = both off. Metrics per run come
from bench/link_metrics.py; the JSON printed holds the medians over seeds and every run.

    tongke bench link --scenario rural --seconds 120 --seeds 3 --json --out bench-out/
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from server.tokens import TokenIssuer

from .link_metrics import RunLogs, measure, read_captures, timeline
from .link_plot import plot_timeline
from .netlab import Link
from .netlab.link import end_process
from .netlab.spec import DirSpec, LinkSpec, scenario

log = logging.getLogger("bench.link")

REPO = Path(__file__).resolve().parent.parent
PORT = 8080  # each link has its own network stacks: no clash between runs
JOIN_AT = 8.0  # link time the classroom joins; the scenario's clock starts here
SETUP_TIMEOUT = 45.0
DEFAULT_SECONDS = {"rural": 120.0, "drop": 100.0, "dip": 80.0}
MODES = {"ours": (True, True), "baseline": (False, False)}  # (adaptive, ladder)
ROOM = "bench-link"
RETRIES = 2  # re-runs of a run whose publisher was starved of CPU by other work
TARGETS = {
    "rural": {"frozen_pct": ("<", 2.0), "delay_ms_p95": ("<", 400.0),
              "offered_over_capacity": ("<=", 1.1), "audio_loss_pct": ("<", 1.0)},
    "drop": {"recovery_rate_s": ("<", 10.0), "recovery_queue_s": ("<", 3.0)},
}


def shifted(spec: LinkSpec, offset: float, seed: int) -> LinkSpec:
    def shift(d: DirSpec) -> DirSpec:
        return replace(d, schedule=tuple((t + offset, r) for t, r in d.schedule))

    return replace(spec, ab=shift(spec.ab), ba=shift(spec.ba), seed=seed, log=True)


def fall_and_rise(spec: LinkSpec) -> tuple[float | None, float | None]:
    """Link times (schedule already shifted) the a->b capacity falls and comes back."""
    base, fall = spec.ab.rate_bps, None
    for t, rate in spec.ab.schedule:
        if fall is None and base is not None and rate is not None and rate < base:
            fall = t
        elif fall is not None and (rate is None or base is None or rate >= base):
            return fall, t
    return fall, None


def write_config(tmp: Path, secret: str, adaptive: bool, ladder: bool, addr: str) -> Path:
    path = tmp / "config.toml"
    path.write_text(
        "[server]\n"
        f'host = "0.0.0.0"\nport = {PORT}\nice_addresses = ["{addr}", "127.0.0.1"]\n'
        f'[tokens]\nsecret = "{secret}"\n'
        f'[data]\ndir = "{tmp / "var"}"\n'
        f"[media]\nadaptive = {str(adaptive).lower()}\nladder = {str(ladder).lower()}\n"
        '[demo]\nconsortium = ""\n'
    )
    return path


def wait_until(cond, timeout: float, what: str, procs: list[subprocess.Popen[Any]]) -> None:
    """Until cond() holds (a cond that raises OSError, e.g. a log not written yet, does not),
    failing early when one of `procs` exits."""
    deadline = time.monotonic() + timeout
    while not _holds(cond):
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{what}: {p.args[-1] if p.args else p} exited early")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


def _holds(cond) -> bool:  # noqa: ANN001
    try:
        return bool(cond())
    except OSError:
        return False


def stop_process(p: subprocess.Popen[Any], grace: float = 8.0) -> None:
    end_process(p, grace)  # a process that writes its results at exit gets time to


def _health_polls(path: Path) -> list[dict[str, Any]]:
    """The classroom's link health from the publisher's polls of GET /api/rooms."""
    out = []
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        try:
            poll = json.loads(line)
        except ValueError:
            continue
        for room in poll.get("rooms", []):
            for p in room.get("participants", []):
                if p.get("role") == "classroom" and p.get("link"):
                    out.append({"mono": poll["mono"], **p["link"]})
    return out


def run_once(
    name: str, seed: int, mode: str, seconds: float, run_dir: Path, layers: int = 1,
) -> dict[str, Any]:
    """One run: returns its metrics (and leaves its logs and plot in run_dir)."""
    adaptive, ladder = MODES[mode]
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="tongke-link-"))
    secret = secrets.token_urlsafe(24)
    issuer = TokenIssuer(secret, 3600)
    spec = shifted(scenario(name), JOIN_AT, seed)
    fall, rise = fall_and_rise(spec)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    py = sys.executable
    frames = run_dir / "publisher-frames.txt"
    received = run_dir / "receiver.json"
    health = run_dir / "server-health.jsonl"
    events = run_dir / "sfu-events.json"
    load_before = os.getloadavg()[0]
    commit = _commit()  # each run starts its own SFU: the code may change between runs
    try:
        with Link(spec) as link:
            cfg = write_config(tmp, secret, adaptive, ladder, link.addr_a)
            procs = []

            def start(ns: str, argv: list[str], logname: str) -> subprocess.Popen[Any]:
                out = (run_dir / logname).open("wb")
                p = link.popen_in(ns, argv, cwd=REPO, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
                out.close()
                procs.append(p)
                return p

            start("a", [py, "-m", "bench.sfu_probe", "--events", str(events), "--",
                  "--config", str(cfg), "serve"], "sfu.log")
            pub_log = run_dir / "publisher.log"
            start("a", [
                py, "-m", "bench.link_publisher", "--url", f"http://127.0.0.1:{PORT}",
                "--token", issuer.mint(ROOM, "teacher", "主讲教师", "teacher"),
                "--observer-token", issuer.mint(ROOM, "observer", "巡课"),
                "--seconds", str(JOIN_AT + seconds + 30), "--frames", str(frames),
                "--health", str(health), "--layers", str(layers),
            ], "publisher.log")
            wait_until(
                lambda: pub_log.exists() and b"published" in pub_log.read_bytes()
                and frames.exists() and frames.stat().st_size > 0,
                SETUP_TIMEOUT, "publisher", procs,
            )
            if link.elapsed() > JOIN_AT:
                log.warning("setup took %.1f s, past JOIN_AT", link.elapsed())
            time.sleep(max(0.0, JOIN_AT - link.elapsed()))
            receiver = start("b", [
                py, "-m", "bench.link_receiver", "--url", f"http://{link.addr_a}:{PORT}",
                "--token", issuer.mint(ROOM, "classroom", "烈山湖学校七(1)班", "class1"),
                "--seconds", str(seconds + 1), "--frames", str(frames), "--out", str(received),
            ], "receiver.log")
            try:
                receiver.wait(timeout=seconds + 60)
            except subprocess.TimeoutExpired:
                log.warning("receiver overran; ending it")
            for p in reversed(procs):  # publisher, then the SFU (it writes its probe events)
                stop_process(p)
            t0 = link.t0
        assert link.log is not None and t0 is not None
        rec = json.loads(received.read_text())
        start_mono = rec["joined_mono"]
        logs = RunLogs(
            receiver=rec, captures=read_captures(frames), packets=link.log, t0=t0,
            window=(start_mono, start_mono + seconds), fall=fall, rise=rise,
        )
        polls = _health_polls(health)
        if polls:
            rec["link"] = polls  # the server's own view, not delayed by the link
        if events.exists():
            logs.sfu_events = json.loads(events.read_text())
        metrics = measure(logs)
        # Other work on this 2-core machine shows in every figure: keep the load with them.
        metrics["load_avg_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        metrics["commit"] = commit
        metrics["link_t0_mono"] = t0  # receiver/publisher times minus this = link time
        series = timeline(logs)
        (run_dir / "timeline.json").write_text(json.dumps(series))
        (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
        link.log.to_csv(run_dir / "packets.csv")
        plot_timeline(series, f"{name} · {mode} · seed {seed}", run_dir / "timeline.png")
        return metrics
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over seeds of numbers; all() of flags; nested dicts are left out."""
    out: dict[str, Any] = {}
    for key in runs[0]:
        values = [r.get(key) for r in runs]
        if all(isinstance(v, bool) for v in values):
            out[key] = all(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            out[key] = round(statistics.median(values), 3)
        elif any(v is None for v in values) and all(
            v is None or isinstance(v, int | float) for v in values
        ):
            numbers = [v for v in values if v is not None]
            out[key] = round(statistics.median(numbers), 3) if numbers else None
    return out


def _commit() -> str:
    """The code measured (the lead's media/ changes often): HEAD, marked when edited."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO, capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+edits" if dirty.strip() else "")


def check_targets(name: str, ours: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, (op, limit) in TARGETS.get(name, {}).items():
        value = ours.get(key)
        ok = value is not None and (value < limit if op == "<" else value <= limit)
        out[key] = {"target": f"{op} {limit}", "measured": value, "met": ok}
    return out


def run_link_bench(
    name: str, seconds: float, seeds: int, out: Path | None, layers: int = 1,
    modes: tuple[str, ...] = tuple(MODES), min_source_fps: float = 0.0,
) -> dict[str, Any]:
    keep = out is not None
    base = out if out is not None else Path(tempfile.mkdtemp(prefix="tongke-bench-link-"))
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    try:
        for seed in range(1, seeds + 1):
            for mode in modes:
                run_dir = base / f"{name}-{mode}-seed{seed}"
                starved: list[dict[str, Any]] = []
                for _ in range(1 + RETRIES):
                    log.info("run %s %s seed %d (%.0f s)", name, mode, seed, seconds)
                    metrics = run_once(name, seed, mode, seconds, run_dir, layers)
                    if metrics["fps_sent"] >= min_source_fps:
                        break
                    log.warning("publisher starved (%.1f fps, load %s): again",
                                metrics["fps_sent"], metrics["load_avg_1m"])
                    starved.append({k: metrics[k] for k in ("fps_sent", "load_avg_1m")})
                runs[mode].append({"seed": seed, **metrics, "starved_attempts": starved})
                log.info("%s", json.dumps({k: v for k, v in metrics.items()
                                           if not isinstance(v, dict)}))
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    ours = median_of(runs["ours"]) if runs.get("ours") else {}
    result = {
        "scenario": name,
        "commit": _commit(),
        "seconds": seconds,
        "seeds": seeds,
        "publisher": f"{'3 layers' if layers == 3 else '1 layer'} 720p VP8 1.2 Mbps + Opus 32k",
        "ours": ours,
        "baseline": median_of(runs["baseline"]) if runs.get("baseline") else {},
        "targets": check_targets(name, ours),
        "runs": runs,
    }
    if keep:
        (base / f"{name}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result
