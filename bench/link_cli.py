"""The `tongke bench link` command line, kept apart so `tongke` starts without the benchmark's
imports (numpy, OpenCV, the emulator)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
from pathlib import Path


def add_parser(bench_sub: argparse._SubParsersAction) -> None:
    p = bench_sub.add_parser("link", help="a lesson behind an emulated rural link (needs root)")
    p.add_argument("--scenario", choices=("rural", "drop", "dip"), default="rural")
    p.add_argument("--seconds", type=float, help="per run (default: rural 120, drop 100, dip 80)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--layers", type=int, choices=(1, 3), default=1,
                   help="publisher camera layers (1: ours uses the server ladder)")
    p.add_argument("--min-source-fps", type=float, default=25.0,
                   help="re-run (twice at most) a run whose publisher fell below this frame "
                   "rate: other work on the machine starved it")
    p.add_argument("--only", choices=("ours", "baseline"), help="run one mode only")
    p.add_argument("--out", type=Path, help="keep plots, per-frame and per-packet logs here")
    p.add_argument("--json", action="store_true", help="print only the JSON object")


def run_link_cli(args: argparse.Namespace) -> int:
    from .link import DEFAULT_SECONDS, run_link_bench

    def on_term(*_: object) -> None:
        raise KeyboardInterrupt  # `with Link` then ends the run's processes and namespaces

    signal.signal(signal.SIGTERM, on_term)

    if not args.json:
        logging.getLogger("bench.link").setLevel(logging.INFO)
    else:
        logging.getLogger().setLevel(logging.WARNING)
    seconds = args.seconds or DEFAULT_SECONDS[args.scenario]
    result = run_link_bench(
        args.scenario, seconds, args.seeds, args.out, args.layers,
        (args.only,) if args.only else ("ours", "baseline"),
        args.min_source_fps,
    )
    print(json.dumps(result, ensure_ascii=False))
    return 0
