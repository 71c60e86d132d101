"""Manual runs: bring up a link, run a command in a namespace, print what the link saw.

    python -m bench.netlab --scenario rural --seconds 30 -- python -m http.server
    python -m bench.netlab --scenario drop --log drop.csv -- <cmd run in ns b>
    python -m bench.netlab --list | --cleanup
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from . import netns
from .link import Link
from .spec import SCENARIOS, LinkSpec, scenario


def parse_rate(text: str) -> float | None:
    """'300k', '1.5M', '20000', 'none' (unlimited) -> bits/s."""
    if text.lower() in ("none", "inf", "unlimited"):
        return None
    mult = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1].lower(), 1.0)
    return float(text[:-1] if mult != 1.0 else text) * mult


def build_spec(a: argparse.Namespace) -> LinkSpec:
    spec = scenario(a.scenario)
    over: dict[str, Any] = {}
    if a.rate is not None:
        over["rate_bps"] = parse_rate(a.rate)
    for key in ("delay_ms", "loss", "queue_ms"):
        if getattr(a, key) is not None:
            over[key] = getattr(a, key)
    return dataclasses.replace(
        spec,
        ab=dataclasses.replace(spec.ab, **over),
        ba=dataclasses.replace(spec.ba, **over),
        seed=a.seed,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench.netlab", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--scenario", default="rural", choices=sorted(SCENARIOS))
    ap.add_argument("--seconds", type=float, help="stop after this long (default: when the "
                    "command exits, or Ctrl-C)")
    ap.add_argument("--in", dest="where", default="b", choices=("a", "b"),
                    help="namespace the command runs in")
    ap.add_argument("--rate", help="override both directions' rate: 300k, 1.5M, none")
    ap.add_argument("--delay-ms", type=float)
    ap.add_argument("--loss", type=float)
    ap.add_argument("--queue-ms", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log", type=Path, help="write the per-packet log (.csv or .jsonl)")
    ap.add_argument("--stats-every", type=float, default=0, help="print live stats (s)")
    ap.add_argument("--list", action="store_true", help="print the scenarios and exit")
    ap.add_argument("--cleanup", action="store_true",
                    help="delete tk-* namespaces left by dead runs and exit")
    ap.add_argument("cmd", nargs=argparse.REMAINDER, help="-- command to run")
    a = ap.parse_args(argv)
    if a.list:
        for name, spec in SCENARIOS.items():
            print(name, json.dumps(dataclasses.asdict(spec)))
        return 0
    if a.cleanup:
        print("\n".join(netns.remove_stale()) or "nothing stale")
        return 0
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt  # so `with Link` tears down on `kill` as on Ctrl-C

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with `&`
    rc = 0
    with Link(build_spec(a)) as link:
        print(json.dumps({"ns_a": link.ns_a, "addr_a": link.addr_a, "ns_b": link.ns_b,
                          "addr_b": link.addr_b}), flush=True)
        # Same session as us: an interactive command (a shell in ns b) keeps the terminal.
        proc = link.popen_in(a.where, cmd, start_new_session=False) if cmd else None
        end = time.monotonic() + a.seconds if a.seconds else float("inf")
        next_stats = time.monotonic() + a.stats_every
        try:
            while time.monotonic() < end and (proc is None or proc.poll() is None):
                time.sleep(0.05)
                if a.stats_every and time.monotonic() >= next_stats:
                    next_stats += a.stats_every
                    print(json.dumps(link.stats()), file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            rc = 130
        if proc is not None and proc.poll() is not None:
            rc = proc.returncode
    if link.log is not None:
        for summary in link.log.summaries().values():
            print(json.dumps(summary))
        if a.log:
            (link.log.to_jsonl if a.log.suffix == ".jsonl" else link.log.to_csv)(a.log)
    return rc


if __name__ == "__main__":
    sys.exit(main())
