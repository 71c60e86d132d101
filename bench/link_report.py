"""Markdown table of `tongke bench link` results (the JSON it prints), for BENCHMARKS.md.

    python -m bench.link_report rural.json drop.json dip.json
    python -m bench.link_report --combined rural.json drop.json dip.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROWS = (
    ("frozen_pct", "frozen, % of time (> 200 ms without a new frame)"),
    ("delay_ms_p50", "capture → shown, p50 ms"),
    ("delay_ms_p95", "capture → shown, p95 ms"),
    ("fps_shown", "frames shown per s"),
    ("fps_sent", "frames the publisher made per s"),
    ("psnr_db_mean", "PSNR-Y dB (at the received size)"),
    ("ssim_mean", "SSIM-Y"),
    ("offered_over_capacity", "offered / capacity (a→b)"),
    ("audio_loss_pct", "audio frames lost %"),
    ("audio_unrecovered_pct", "… not rebuilt by Opus FEC either %"),
    ("keyframes", "keyframes received"),
    ("longest_freeze_s", "longest freeze s"),
    ("recovery_queue_s", "recovery: queue < 100 ms after the fall, s"),
    ("recovery_rate_s", "recovery: 90% of the earlier rate after the return, s"),
    ("rate_before_fall_kbps", "delivered before the fall, kbit/s"),
)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(result: dict[str, Any]) -> str:
    ours, base = result.get("ours", {}), result.get("baseline", {})
    lines = [
        f"**{result['scenario']}** — {result['seconds']:g} s × {result['seeds']} seeds, medians "
        f"(commit {result.get('commit', '?')})",
        "",
        "| metric | ours | baseline (stock forwarding) |",
        "| --- | --- | --- |",
    ]
    for key, label in ROWS:
        if key in ours or key in base:
            lines.append(f"| {label} | {_fmt(ours.get(key))} | {_fmt(base.get(key))} |")
    targets = result.get("targets") or {}
    if targets:
        lines += ["", "Targets (ours): " + "; ".join(
            f"{k} {t['target']}: {_fmt(t['measured'])} {'✓' if t['met'] else '✗'}"
            for k, t in targets.items())]
    return "\n".join(lines)


def combined(results: list[dict[str, Any]]) -> str:
    """One table, a column per scenario and mode (ours, baseline)."""
    cols = [(r, mode) for r in results for mode in ("ours", "baseline") if r.get(mode)]
    head = " | ".join(f"{r['scenario']} {mode}" for r, mode in cols)
    lines = [f"| metric | {head} |", "| --- |" + " --- |" * len(cols)]
    for key, label in ROWS:
        if any(key in r[mode] for r, mode in cols):
            cells = " | ".join(_fmt(r[mode].get(key)) for r, mode in cols)
            lines.append(f"| {label} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    if args[:1] == ["--combined"]:
        print(combined([json.loads(Path(p).read_text()) for p in args[1:]]))
        return
    for path in args:
        print(table(json.loads(Path(path).read_text())))
        print()


if __name__ == "__main__":
    main()
