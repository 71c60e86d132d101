"""`tongke bench fanout`: a short real run (two server processes, real aiortc peers on loopback)
and the subscriber's frame counter.

The run uses bench/configs/no-ladder.toml: this tests the benchmark, not the ladder (which, on
the shipped defaults, keeps loopback subscribers on a server-made 180p layer; see BENCHMARKS.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.fanout import Window
from bench.peers import FrameCounter, FrameCounting

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "bench" / "configs" / "no-ladder.toml"

FIELDS = [
    "subscribers",
    "sfu_media",
    "source",
    "forward_cpu_core_fraction",
    "forward_cpu_per_subscriber",
    "forward_out_packets",
    "forward_out_packets_per_core_second",
    "delivered_fps_min",
    "delivered_fps",
    "added_latency_ms_p50",
    "added_latency_ms_p99",
    "naive_subscribers_run",
    "naive_subscribers",
    "naive_cpu_core_fraction",
    "naive_cpu_per_subscriber",
    "naive_delivered_fps_min",
    "naive_over_forward_per_subscriber",
    "goals_met",
]


@pytest.mark.timeout(120)
def test_short_fanout_prints_sane_json(tmp_path: Path) -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "server.cli", "--config", str(CONFIG), "bench", "fanout",
         "--subscribers", "2", "--seconds", "4", "--naive-subscribers", "1", "--json"],
        cwd=tmp_path,  # the CLI may keep a generated secret under ./var
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=100,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)  # --json: stdout is exactly one JSON object
    assert [f for f in FIELDS if f not in result] == []
    assert result["subscribers"] == 2 and len(result["delivered_fps"]) == 2
    assert result["sfu_media"]["ladder"] is False  # --config reached the server process
    assert result["naive_subscribers_run"] == 1 and 0 <= result["naive_subscribers"] <= 1
    assert result["source"]["fps"] > 0 and result["source"]["bitrate_kbps"] > 0
    assert result["delivered_fps_min"] > 0 and result["naive_delivered_fps_min"] > 0
    assert result["forward_cpu_core_fraction"] > 0 and result["naive_cpu_core_fraction"] > 0
    assert result["forward_out_packets"] > 0 and result["forward_out_packets_per_core_second"] > 0
    assert result["forward_cpu_per_subscriber"] < result["naive_cpu_per_subscriber"]
    assert result["naive_over_forward_per_subscriber"] > 1
    assert 0 <= result["added_latency_ms_p50"] <= result["added_latency_ms_p99"]
    assert time.monotonic() - started < 90


def _frame(counting: FrameCounting, seq: int, ts: int, packets: int, key: bool) -> int:
    """Feed one VP8 frame of `packets` packets; returns the next sequence number."""
    for i in range(packets):
        first = i == 0
        data = (b"\x00" if key else b"\x01") + b"x" * 99 if first else b"y" * 100
        counting.add(seq + i, ts, i == packets - 1, data, 0.0, starts_frame=first)
    return seq + packets


def test_frame_counting_counts_decodable_frames_only() -> None:
    counter = FrameCounter()
    asked: list[int] = []
    counting = FrameCounting("vp8", counter, lambda: asked.append(1))
    seq = _frame(counting, 0, 0, 3, key=True)
    seq = _frame(counting, seq, 3000, 2, key=False)
    assert (counter.frames, counter.keyframes, counter.octets) == (2, 1, 500)
    # One packet of the next frame never comes: that frame and its successors are lost ...
    counting.add(seq, 6000, False, b"\x01" + b"x" * 99, 0.0, starts_frame=True)
    seq += 2
    seq = _frame(counting, seq, 9000, 2, key=False)
    assert counter.frames == 2 and asked
    # ... until the next keyframe, not for the rest of the run.
    seq = _frame(counting, seq, 12000, 4, key=True)
    seq = _frame(counting, seq, 15000, 2, key=False)
    assert (counter.frames, counter.keyframes) == (4, 2)


def test_frame_counting_ignores_duplicates_and_wraps() -> None:
    counter = FrameCounter()
    counting = FrameCounting("vp8", counter, lambda: None)
    seq = _frame(counting, 65534, 0, 2, key=True)  # 65534, 65535
    counting.add(65535, 0, True, b"y" * 100, 0.0)  # a retransmitted duplicate
    _frame(counting, seq & 0xFFFF, 3000, 3, key=False)  # 0, 1, 2 after the wrap
    assert counter.frames == 2


def test_cpu_per_subscriber_is_normalised_by_delivered_frames() -> None:
    # A baseline that delivers half the frames to each of 2 subscribers is charged for one.
    w = Window(10.0, 4.0, 0.0, (0.0, 0.0), 30.0, 1500.0, [15.0, 15.0], [700.0, 700.0])
    assert w.cpu_per_subscriber() == pytest.approx(0.4)
    assert w.keeping_up() == 0
