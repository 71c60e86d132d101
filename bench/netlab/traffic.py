"""Measurement traffic: a paced UDP sender and a recording receiver, run inside namespaces.

    python -m bench.netlab.traffic recv --port 9000 --seconds 5 --out rx.json   (prints "ready")
    python -m bench.netlab.traffic send --to 10.77.0.2 --port 9000 --rate 1e6 --seconds 3

Each datagram carries a sequence number and its send time on CLOCK_MONOTONIC, which every
namespace shares, so the receiver measures one-way delay directly.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HEADER = struct.Struct("!IQ")  # seq, send time (ns)
IP_UDP_OVERHEAD = 28  # what the link sees on top of the UDP payload


def send(to: str, port: int, rate_bps: float, size: int, seconds: float, count: int) -> dict:
    """Send `size`-byte payloads at `rate_bps` of IP bytes for `seconds` (or `count` packets)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    pad = b"\0" * (size - HEADER.size)
    gap = (size + IP_UDP_OVERHEAD) * 8 / rate_bps
    start = time.monotonic()
    seq = 0
    while (count and seq < count) or (not count and time.monotonic() - start < seconds):
        due = start + seq * gap
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            sock.sendto(HEADER.pack(seq, time.monotonic_ns()) + pad, (to, port))
        except OSError:
            pass  # a full local buffer is the sender's problem, not the link's
        seq += 1
    return {"sent": seq, "seconds": round(time.monotonic() - start, 3)}


def receive(port: int, seconds: float, idle: float, out: Path) -> dict:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind(("0.0.0.0", port))
    print("ready", flush=True)
    seqs: list[int] = []
    sent: list[int] = []
    recv: list[int] = []
    sizes: list[int] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        sock.settimeout(min(left, idle) if seqs else left)
        try:
            data = sock.recv(65535)
        except TimeoutError:
            if seqs:
                break  # the flow is over
            continue
        now = time.monotonic_ns()
        seq, t_sent = HEADER.unpack_from(data)
        seqs.append(seq)
        sent.append(t_sent)
        recv.append(now)
        sizes.append(len(data) + IP_UDP_OVERHEAD)
    out.write_text(json.dumps({"seq": seqs, "sent_ns": sent, "recv_ns": recv, "size": sizes}))
    return {"received": len(seqs)}


@dataclass
class Capture:
    """What a receiver recorded (sizes are IP bytes, times CLOCK_MONOTONIC ns)."""

    seq: list[int]
    sent_ns: list[int]
    recv_ns: list[int]
    size: list[int]

    @classmethod
    def load(cls, path: str | Path) -> Capture:
        return cls(**json.loads(Path(path).read_text()))

    def __len__(self) -> int:
        return len(self.seq)

    def owd_ms(self) -> list[float]:
        return [(r - s) / 1e6 for s, r in zip(self.sent_ns, self.recv_ns, strict=True)]

    def throughput_bps(self, t_from: float | None = None, t_to: float | None = None) -> float:
        """IP bits per second received in [t_from, t_to) (monotonic seconds), default: all."""
        rx = [(r / 1e9, n) for r, n in zip(self.recv_ns, self.size, strict=True)]
        lo = rx[0][0] if t_from is None else t_from
        hi = rx[-1][0] if t_to is None else t_to
        bits = sum(n for t, n in rx if lo <= t < hi) * 8
        return bits / (hi - lo) if hi > lo else 0.0

    def missing(self, sent: int) -> list[int]:
        got = set(self.seq)
        return [s for s in range(sent) if s not in got]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--to", required=True)
    s.add_argument("--port", type=int, default=9000)
    s.add_argument("--rate", type=float, required=True, help="IP bits/s")
    s.add_argument("--size", type=int, default=1172, help="UDP payload bytes (1200 on the wire)")
    s.add_argument("--seconds", type=float, default=3.0)
    s.add_argument("--count", type=int, default=0, help="stop after this many packets")
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, default=9000)
    r.add_argument("--seconds", type=float, default=10.0, help="give up after this long")
    r.add_argument("--idle", type=float, default=1.0, help="stop this long after the last packet")
    r.add_argument("--out", type=Path, required=True)
    a = ap.parse_args(argv)
    if a.cmd == "send":
        res = send(a.to, a.port, a.rate, max(a.size, HEADER.size), a.seconds, a.count)
    else:
        res = receive(a.port, a.seconds, a.idle, a.out)
    print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
