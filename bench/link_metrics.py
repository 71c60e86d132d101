"""What one link-benchmark run measured, from its logs: the receiver's record, the publisher's
frames file and the emulator's per-packet log.

Times: receiver and publisher write CLOCK_MONOTONIC (shared by every namespace on the machine);
the packet log counts from the link's t0. Definitions (issue 3):
- frozen_pct: share of time in gaps of more than FREEZE_S between two shown frames, counted
  from the first shown frame (as Chrome's totalFreezesDuration; the wait for the first frame
  is `first_frame_s`);
- delay: capture (publisher) to shown (decoded with a readable id at the receiver);
- offered_over_capacity: bytes offered to the a->b direction over the capacity, in the window;
- recovery_queue_s: from the capacity's fall until the queue delay (p95 per QBIN_S) stays below
  QUEUE_OK_S for HOLD_S;
- recovery_rate_s: from the capacity's return until the delivered rate (per RATE_WIN_S) reaches
  RATE_OK of its mean over the PRE_S before the fall.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .netlab.packetlog import DELIVERED, DIR_CODE, DROPPED, LOST, PacketLog

FREEZE_S = 0.2
QBIN_S = 0.25
QUEUE_OK_S = 0.1
HOLD_S = 2.0
RATE_WIN_S = 1.0
RATE_OK = 0.9
PRE_S = 10.0
AUDIO_STEP = 960  # 20 ms Opus at 48 kHz


@dataclass
class RunLogs:
    receiver: dict[str, Any]
    captures: dict[int, float]  # frame id -> capture monotonic time
    packets: PacketLog
    t0: float  # monotonic time of link time 0
    window: tuple[float, float]  # monotonic
    fall: float | None = None  # link time the capacity falls (drop/dip)
    rise: float | None = None  # link time it comes back
    health: list[dict[str, Any]] | None = None  # the server's /api/rooms polls
    sfu_events: list[list[Any]] | None = None  # bench/sfu_probe.py: [mono, kind, detail]


def read_captures(path: str | Path) -> dict[int, float]:
    out: dict[int, float] = {}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            out[int(parts[0])] = float(parts[1])
    return out


def _freezes(times: list[float], end: float) -> list[tuple[float, float]]:
    points = [*times, end]
    return [(a, b) for a, b in zip(points, points[1:], strict=False) if b - a > FREEZE_S]


def _arrays(log: PacketLog, direction: str) -> dict[str, np.ndarray]:
    t = np.frombuffer(log.t, dtype=np.float64)
    sel = np.frombuffer(log.dir, dtype=np.int8) == DIR_CODE[direction]
    order = np.argsort(t[sel])
    return {
        "t": t[sel][order],
        "size": np.frombuffer(log.size, dtype=np.uint32)[sel][order].astype(np.int64),
        "status": np.frombuffer(log.status, dtype=np.int8)[sel][order],
        "q": np.frombuffer(log.qdelay, dtype=np.float64)[sel][order],
    }


def recovery_queue(log: PacketLog, fall: float, until: float) -> tuple[float, bool]:
    """Seconds after `fall` until the a->b queue delay stays low; (censored value, recovered)."""
    a = _arrays(log, "ab")
    bins = np.arange(fall, until, QBIN_S)
    high = []
    for b in bins:
        sel = (a["t"] >= b) & (a["t"] < b + QBIN_S)
        accepted = sel & (a["status"] != DROPPED)
        q = a["q"][accepted]
        # A bin whose arrivals were dropped had a full queue; one with no arrivals, none.
        full = bool((sel & (a["status"] == DROPPED)).any())
        high.append(full or (bool(len(q)) and float(np.percentile(q, 95)) >= QUEUE_OK_S))
    hold = int(round(HOLD_S / QBIN_S))
    for i in range(len(bins) - hold + 1):
        if not any(high[i : i + hold]):
            return round(float(bins[i] - fall), 2), True
    return round(until - fall, 2), False


def delivered_rate(log: PacketLog, start: float, end: float) -> float:
    a = _arrays(log, "ab")
    sel = (a["t"] >= start) & (a["t"] < end) & (a["status"] == DELIVERED)
    return float(a["size"][sel].sum()) * 8 / max(end - start, 1e-9)


def recovery_rate(log: PacketLog, fall: float, rise: float, until: float) -> tuple[float, bool]:
    pre = delivered_rate(log, max(0.0, fall - PRE_S), fall)
    t = rise
    while t + RATE_WIN_S <= until:
        if delivered_rate(log, t, t + RATE_WIN_S) >= RATE_OK * pre:
            return round(t - rise, 2), True
        t += 0.25
    return round(until - rise, 2), False


def _pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def measure(logs: RunLogs) -> dict[str, Any]:
    rec, (w0, w1) = logs.receiver, logs.window
    shown = [s for s in rec["shown"] if w0 <= s[1] <= w1]
    times = [s[1] for s in shown]
    first = times[0] if times else None
    freezes = _freezes(times, w1) if times else [(w0, w1)]
    live_from = first if first is not None else w0
    frozen = sum(b - a for a, b in freezes)
    delays = [
        (s[1] - logs.captures[s[0]]) * 1000 for s in shown if s[0] in logs.captures
    ]
    ids_shown = {s[0] for s in shown}
    quality = [q for q in rec["quality"] if q[0] in ids_shown]
    heights: dict[str, int] = {}
    for s in shown:
        heights[f"{s[4]}p"] = heights.get(f"{s[4]}p", 0) + 1
    keyframes = [k for k in rec["keyframes"] if w0 <= k <= w1]
    # What the publisher itself managed (a busy machine starves its encoder): the floor for
    # every video figure of the receiver.
    captured = sorted(t for t in logs.captures.values() if live_from <= t <= w1)
    source_frozen = sum(b - a for a, b in _freezes(captured, w1)) if captured else w1 - live_from
    lw0, lw1 = w0 - logs.t0, w1 - logs.t0
    summary = logs.packets.summary("ab", lw0, lw1)
    out: dict[str, Any] = {
        "frozen_pct": round(100 * frozen / max(w1 - live_from, 1e-9), 2),
        "delay_ms_p50": _pct(delays, 50),
        "delay_ms_p95": _pct(delays, 95),
        "fps_shown": round(len(shown) / max(w1 - live_from, 1e-9), 1),
        "fps_sent": round(len(captured) / max(w1 - live_from, 1e-9), 1),
        "source_frozen_pct": round(100 * source_frozen / max(w1 - live_from, 1e-9), 2),
        "psnr_db_mean": round(float(np.mean([q[1] for q in quality])), 2) if quality else None,
        "ssim_mean": round(float(np.mean([q[2] for q in quality])), 4) if quality else None,
        "offered_over_capacity": summary["offered_vs_capacity"],
        **audio_loss(rec["audio_ts"]),
        "keyframes": len(keyframes),
        "first_frame_s": None if first is None else round(first - w0, 2),
        "freezes": len(freezes),
        "longest_freeze_s": round(max((b - a for a, b in freezes), default=0.0), 2),
        "resolution_share": {k: round(v / max(len(shown), 1), 3) for k, v in heights.items()},
        "quality_samples": len(quality),
        "link_ab": {k: summary[k] for k in ("offered_bps", "capacity_bps", "delivered_bps",
                                             "dropped_pkts", "lost_pkts", "qdelay_ms")},
        "unreadable_frames": rec.get("unreadable", 0),
    }
    if logs.fall is not None and logs.rise is not None:
        q, q_ok = recovery_queue(logs.packets, logs.fall, min(logs.rise, lw1))
        r, r_ok = recovery_rate(logs.packets, logs.fall, logs.rise, lw1)
        pre_start = max(0.0, logs.fall - PRE_S)
        pre = delivered_rate(logs.packets, pre_start, logs.fall)
        pre_cap = logs.packets.capacity_bits("ab", pre_start, logs.fall) / (logs.fall - pre_start)
        out |= {"recovery_queue_s": q, "queue_recovered": q_ok,
                "recovery_rate_s": r, "rate_recovered": r_ok,
                # A sender that never used the capacity "recovers" at once: say what it used.
                "rate_before_fall_kbps": round(pre / 1000),
                "used_before_fall": round(pre / pre_cap, 3) if pre_cap else None}
    out["server_view"] = server_view(rec.get("link", []), (w0, w1))
    if logs.sfu_events is not None:
        out["sfu_events"] = sfu_events(logs.sfu_events, (w0, w1))
    out["receiver_side"] = receiver_side(rec, (w0, w1), freezes)
    return out


def sfu_events(events: list[list[Any]], window: tuple[float, float]) -> dict[str, Any]:
    """Counts of the SFU's forwarding decisions in the window (see bench/sfu_probe.py)."""
    counts: dict[str, int] = {}
    keyframe_bytes: list[int] = []
    for mono, kind, detail in events:
        if not window[0] <= mono <= window[1]:
            continue
        if kind in ("remb", "rr_loss", "rtt"):
            continue  # inputs, not decisions: in sfu-events.json
        if kind == "nack":
            kind = "nack_granted" if detail[1] else "nack_refused"
        if kind == "source_frame":
            kind = f"frames_from:{detail}"
        if kind == "source_keyframe":
            kind = f"keyframe_from:{detail[0]}"
            keyframe_bytes.append(detail[1])
        counts[kind] = counts.get(kind, 0) + 1
    if keyframe_bytes:
        counts["keyframe_bytes_p50"] = int(np.median(keyframe_bytes))
    return dict(sorted(counts.items()))


def receiver_side(
    rec: dict[str, Any], window: tuple[float, float], freezes: list[tuple[float, float]]
) -> dict[str, Any]:
    """What the classroom's own receive path saw: packets, holes, duplicates, and how much of
    the frozen time followed a video packet that never arrived (not even retransmitted)."""
    pkts = [p for p in rec.get("video_packets", []) if window[0] <= p[0] <= window[1]]
    if not pkts:
        return {}
    first_seen: dict[int, float] = {}
    dups = 0
    unwrapped, last = 0, None
    for p in pkts:  # unwrap 16-bit sequence numbers
        if last is not None:
            d = (p[1] - last) & 0xFFFF
            unwrapped += d - 0x10000 if d >= 0x8000 else d
        last = p[1]
        if unwrapped in first_seen:
            dups += 1
        else:
            first_seen[unwrapped] = p[0]
    seqs = sorted(first_seen)
    noticed = []  # when each never-arrived packet's gap showed: the next one's arrival
    later = None
    for s in range(seqs[-1], seqs[0] - 1, -1):
        if s in first_seen:
            later = first_seen[s]
        elif later is not None:
            noticed.append(later)
    frozen = sum(b - a for a, b in freezes)
    after_loss = sum(b - a for a, b in freezes if any(a - 1.0 <= t <= b for t in noticed))
    return {
        "video_packets": len(pkts),
        "never_arrived": len(noticed),
        "duplicates": dups,
        "frames_emitted": sum(1 for f in rec["video_bytes"] if window[0] <= f[0] <= window[1]),
        "frozen_after_lost_packet_pct": round(100 * after_loss / frozen, 1) if frozen else None,
    }


def audio_loss(timestamps: list[int]) -> dict[str, float | None]:
    """Audio packets lost of those expected; and those Opus FEC cannot rebuild either (the
    packet after a lost one carries its low-rate copy: a loss is final only if that one is lost
    too)."""
    if len(timestamps) < 2:
        return {"audio_loss_pct": None, "audio_unrecovered_pct": None}
    base = timestamps[0]
    idx = sorted({((ts - base) & 0xFFFFFFFF) // AUDIO_STEP for ts in timestamps
                  if ((ts - base) & 0xFFFFFFFF) < 1 << 31})
    got = set(idx)
    expected = idx[-1] - idx[0] + 1
    lost = [i for i in range(idx[0], idx[-1] + 1) if i not in got]
    final = [i for i in lost if i + 1 not in got]
    return {
        "audio_loss_pct": round(100 * len(lost) / expected, 2),
        "audio_unrecovered_pct": round(100 * len(final) / expected, 2),
    }


def server_view(messages: list[dict[str, Any]], window: tuple[float, float]) -> dict[str, Any]:
    """The server's `link` messages to this classroom, summarised: what it believed and did."""
    msgs = [m for m in messages if window[0] <= m["mono"] <= window[1]]
    if not msgs:
        return {}
    layers: dict[str, int] = {}
    for m in msgs:
        for layer in (m.get("layers") or {}).values():
            layers[str(layer)] = layers.get(str(layer), 0) + 1
    est = [m["estimate_kbps"] for m in msgs if m.get("estimate_kbps") is not None]
    sent = [m["sent_kbps"] for m in msgs if m.get("sent_kbps") is not None]
    loss = [m["loss_pct"] for m in msgs if m.get("loss_pct") is not None]
    rtt = [m["rtt_ms"] for m in msgs if m.get("rtt_ms") is not None]
    last = msgs[-1]
    return {
        "estimate_kbps_p50": _pct(est, 50),
        "sent_kbps_p50": _pct(sent, 50),
        "loss_pct_p50": _pct(loss, 50),
        "rtt_ms_p50": _pct(rtt, 50),
        "layer_reports": layers,
        "quality": {q: sum(m.get("quality") == q for m in msgs) for q in ("good", "weak", "poor")},
        "nack_refused": last.get("nack_refused"),
        "paced_drops": last.get("paced_drops"),
    }


def timeline(logs: RunLogs, bin_s: float = 1.0) -> dict[str, list[Any]]:
    """Per-bin series for the plot (link time)."""
    a = _arrays(logs.packets, "ab")
    lw0, lw1 = logs.window[0] - logs.t0, logs.window[1] - logs.t0
    edges = np.arange(lw0, lw1 + 1e-9, bin_s)
    out: dict[str, list[Any]] = {k: [] for k in (
        "t", "capacity_kbps", "offered_kbps", "delivered_kbps", "qdelay_p95_ms",
        "drop_pkts", "lost_pkts")}
    for b in edges[:-1]:
        sel = (a["t"] >= b) & (a["t"] < b + bin_s)
        st = a["status"][sel]
        q = a["q"][sel][st != DROPPED]
        cap = logs.packets.capacity_bits("ab", b, b + bin_s) / bin_s
        out["t"].append(round(float(b - lw0), 3))
        out["capacity_kbps"].append(None if math.isinf(cap) else cap / 1000)
        out["offered_kbps"].append(float(a["size"][sel].sum()) * 8 / bin_s / 1000)
        out["delivered_kbps"].append(
            float(a["size"][sel][st == DELIVERED].sum()) * 8 / bin_s / 1000)
        out["qdelay_p95_ms"].append(float(np.percentile(q, 95)) * 1000 if len(q) else 0.0)
        out["drop_pkts"].append(int((st == DROPPED).sum()))
        out["lost_pkts"].append(int((st == LOST).sum()))
    w0 = logs.window[0]
    shown = [s for s in logs.receiver["shown"] if w0 <= s[1] <= logs.window[1]]
    out["frame_t"] = [round(s[1] - w0, 3) for s in shown]
    out["frame_delay_ms"] = [
        round((s[1] - logs.captures[s[0]]) * 1000, 1) if s[0] in logs.captures else None
        for s in shown
    ]
    out["frame_height"] = [s[4] for s in shown]
    times = [s[1] for s in shown]
    out["freezes"] = [[round(x - w0, 3), round(y - w0, 3)]
                      for x, y in (_freezes(times, logs.window[1]) if times else [])]
    out["estimate_t"] = [round(m["mono"] - w0, 2) for m in logs.receiver.get("link", [])]
    out["estimate_kbps"] = [m.get("estimate_kbps") for m in logs.receiver.get("link", [])]
    return out
