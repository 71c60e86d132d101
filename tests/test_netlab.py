"""The userspace link emulator (bench.netlab).

The model tests drive one direction's Pipe with made-up times and run anywhere. The link tests
need root and `ip netns`: real UDP traffic crosses two namespaces through the emulator process,
and what the receiver measures is compared with what was set.
"""

from __future__ import annotations

import errno
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.netlab import DirSpec, GilbertElliott, Link, LinkSpec, PacketLog, netns, scenario
from bench.netlab.__main__ import parse_rate
from bench.netlab.pipe import Pipe
from bench.netlab.traffic import Capture
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# -- the model, no root needed ------------------------------------------------------------


def run_pipe(pipe: Pipe, arrivals: list[tuple[float, int]], step: float, until: float):
    """Offer (time, size) packets, polling every `step` s; return (release time, size) pairs."""
    out: list[tuple[float, int]] = []
    pending = sorted(arrivals)
    t = 0.0
    while t <= until:
        while pending and pending[0][0] <= t:
            at, size = pending.pop(0)
            out += [(at, len(p)) for p in pipe.poll(at)]
            pipe.offer(at, bytes(size))
        out += [(t, len(p)) for p in pipe.poll(t)]
        t += step
    return out


def test_pipe_rate_is_exact_however_late_it_is_polled():
    for step in (0.0001, 0.007):  # precise wake-ups, then sloppy ones
        pipe = Pipe(DirSpec(rate_bps=1_000_000, queue_ms=None), random.Random(1))
        out = run_pipe(pipe, [(0.0, 1250)] * 100, step, 2.0)
        assert len(out) == 100
        assert out[-1][0] == pytest.approx(1.0, abs=step + 1e-9)  # 100 x 10 ms


def test_pipe_drop_tail_is_sized_in_ms_at_the_current_rate():
    log = PacketLog()
    pipe = Pipe(DirSpec(rate_bps=1_000_000, queue_ms=100), random.Random(1), log=log)
    for _ in range(50):
        pipe.offer(0.0, bytes(1250))  # 100 ms at 1 Mbps = 12,500 bytes = 10 packets waiting
    assert (pipe.stats()["dropped_pkts"], pipe.stats()["queue_pkts"]) == (39, 10)
    pipe.set_rate(0.0, 500_000)  # the same 100 ms now holds 5 packets
    for _ in range(5):
        pipe.offer(0.0, bytes(1250))
    assert pipe.stats()["dropped_pkts"] == 44
    assert log.summary("ab", 0, 1)["dropped_pkts"] == 44


def test_pipe_rate_change_mid_packet_and_delay():
    pipe = Pipe(DirSpec(rate_bps=1_000_000, delay_ms=50), random.Random(1))
    pipe.offer(0.0, bytes(1250))  # 10 ms on the wire at 1 Mbps
    assert pipe.poll(0.004) == []
    pipe.set_rate(0.004, 250_000)  # 6,000 bits left at 250 kbps: 24 ms more
    assert pipe.next_event() == pytest.approx(0.028 + 0.050)  # then 50 ms of delay
    assert pipe.poll(0.0279) == [] and pipe.poll(0.028 + 0.0499) == []
    assert len(pipe.poll(0.078)) == 1
    pipe.offer(0.100, bytes(1250))  # 40 ms at 250 kbps; the serializer is now at 0.100
    pipe.set_rate(0.090, 1_000_000)  # a change "in the past" applies from 0.100, not before
    assert pipe.poll(0.110 + 0.050) != []


def test_pipe_random_and_bursty_loss_match_their_parameters():
    n = 20000
    rnd = Pipe(DirSpec(loss=0.03), random.Random(7))
    for i in range(n):
        rnd.offer(i * 1e-3, bytes(100))
        rnd.poll(i * 1e-3)
    assert rnd.lost / n == pytest.approx(0.03, abs=0.005)

    ge = GilbertElliott.from_mean(0.05, 4.0)
    assert ge.mean_loss == pytest.approx(0.05)
    log = PacketLog()
    bursty = Pipe(DirSpec(burst=ge), random.Random(7), log=log)
    for i in range(n):
        bursty.offer(i * 1e-3, bytes(100))
    lost = [s == 2 for s in log.status]
    runs = [len(r) for r in "".join("x" if x else "." for x in lost).split(".") if r]
    assert sum(lost) / n == pytest.approx(0.05, abs=0.01)
    assert statistics.mean(runs) == pytest.approx(4.0, rel=0.2)


def test_log_exports_and_summarizes(tmp_path: Path):
    log = PacketLog(rates=[(0.0, "ab", 1e6), (1.0, "ab", 3e5), (0.0, "ba", None)], duration=2)
    log.add(0.5, 0, 1000, 0, 0.010)
    log.add(0.1, 0, 1000, 1, float("nan"))
    log.add(1.5, 0, 500, 2, 0.030)
    s = log.summary("ab")
    assert s["capacity_bps"] == 650_000  # (1 s at 1 Mbps + 1 s at 300 kbps) / 2 s
    assert (s["offered_pkts"], s["dropped_pkts"], s["lost_pkts"], s["delivered_pkts"]) == (
        3, 1, 1, 1)
    assert s["qdelay_ms"]["max"] == 30.0 and s["loss_rate"] == 0.5
    assert log.summary("ba")["capacity_bps"] is None
    log.to_csv(tmp_path / "l.csv")
    log.to_jsonl(tmp_path / "l.jsonl")
    rows = [json.loads(x) for x in (tmp_path / "l.jsonl").read_text().splitlines()]
    assert [r["t"] for r in rows] == [0.1, 0.5, 1.5] and rows[0]["qdelay_ms"] is None
    assert (tmp_path / "l.csv").read_text().splitlines()[1] == "0.1,ab,1000,dropped,"
    with open(tmp_path / "l.bin", "wb") as f:
        log.dump(f)
    assert PacketLog.load(tmp_path / "l.bin").summary("ab") == s


def test_specs_and_scenarios():
    spec = LinkSpec(ab=DirSpec(rate_bps=1e6, burst=GilbertElliott.from_mean(0.02, 3),
                               schedule=((70, 1e6), (30, 3e5))), ba=DirSpec())
    assert LinkSpec.from_json(spec.to_json()) == spec
    assert spec.ab.rate_at(29) == 1e6 and spec.ab.rate_at(30) == 3e5 and spec.ab.rate_at(70) == 1e6
    rural = scenario("rural").ab
    assert (rural.rate_bps, rural.delay_ms, rural.loss, rural.queue_ms) == (300_000, 75, 0.03, 300)
    assert scenario("drop").ba.schedule == ((30.0, 300_000), (70.0, 1_000_000))
    dip = scenario("dip").ab
    assert dip.rate_at(25) == 100_000 and dip.rate_at(50) - dip.rate_at(20) > 0
    assert parse_rate("300k") == 300_000 and parse_rate("1.5M") == 1_500_000
    assert parse_rate("none") is None
    with pytest.raises(KeyError):
        scenario("moon")


# -- real links: root and `ip netns` --------------------------------------------------------


@pytest.fixture
def rooted() -> None:
    ok, why = netns.available()
    require(ok, why)


def receiver(
    link: Link, where: str, out: Path, port: int = 9000, idle: float = 1.0
) -> subprocess.Popen[str]:
    p = link.popen_in(where, [PY, "-m", "bench.netlab.traffic", "recv", "--port", str(port),
                              "--seconds", "20", "--idle", str(idle), "--out", str(out)],
                      stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def sender(link: Link, where: str, *args: str, port: int = 9000) -> subprocess.Popen[str]:
    to = link.addr("b" if where == "a" else "a")
    return link.popen_in(where, [PY, "-m", "bench.netlab.traffic", "send", "--to", to,
                                 "--port", str(port), *args],
                         stdout=subprocess.PIPE, text=True, cwd=ROOT)


def sent_count(p: subprocess.Popen[str]) -> int:
    out, _ = p.communicate(timeout=20)
    return json.loads(out)["sent"]


def finish(p: subprocess.Popen[str], out: Path) -> Capture:
    p.wait(timeout=20)
    return Capture.load(out)


def test_rate_queue_overflow_and_queue_delay(rooted, tmp_path: Path):
    spec = LinkSpec(ab=DirSpec(rate_bps=1_000_000, delay_ms=20, queue_ms=200), ba=DirSpec())
    with Link(spec) as link:
        rx = receiver(link, "b", tmp_path / "rx.json")
        sent = sent_count(sender(link, "a", "--rate", "2e6", "--seconds", "3"))
        cap = finish(rx, tmp_path / "rx.json")
        stats = link.stats()["ab"]
    rate = cap.throughput_bps()
    arrivals = [t for t, d in zip(link.log.t, link.log.dir, strict=True) if d == 0]
    s = link.log.summary("ab", min(arrivals), max(arrivals))  # while the sender ran
    print(f"\nrate {rate:.0f} bps, sent {sent} got {len(cap)}, link summary {s}")
    assert rate == pytest.approx(1_000_000, rel=0.15)
    assert stats["dropped_pkts"] == sent - len(cap) > sent * 0.35  # offered 2x: ~half dropped
    assert s["offered_vs_capacity"] == pytest.approx(2.0, rel=0.1)
    # A full 200 ms drop-tail queue: packets wait 200 ms less one packet's 9.6 ms
    assert 170 <= s["qdelay_ms"]["p95"] <= 205
    assert s["qdelay_ms"]["max"] <= 200
    owd = sorted(cap.owd_ms())  # delay + one packet's 9.6 ms + up to 200 ms queued
    assert 20 + 9.6 <= owd[0] and 20 + 9.6 + 170 <= owd[len(owd) // 2] <= 20 + 9.6 + 205


def test_one_way_delay_each_direction(rooted, tmp_path: Path):
    spec = LinkSpec(ab=DirSpec(delay_ms=40), ba=DirSpec(delay_ms=100))
    with Link(spec) as link:
        rx_b = receiver(link, "b", tmp_path / "b.json", idle=0.5)
        rx_a = receiver(link, "a", tmp_path / "a.json", idle=0.5)
        flows = [sender(link, w, "--rate", "2e5", "--count", "100", "--size", "200")
                 for w in ("a", "b")]
        for f in flows:
            assert sent_count(f) == 100
        ab, ba = finish(rx_b, tmp_path / "b.json"), finish(rx_a, tmp_path / "a.json")
        stats = link.stats()
    for cap, want, d in ((ab, 40, "ab"), (ba, 100, "ba")):
        owd = sorted(cap.owd_ms())
        late = stats[d]["late_mean_ms"], stats[d]["late_max_ms"]
        print(f"\ndelay {want} ms: min {owd[0]:.2f} p50 {owd[50]:.2f} p90 {owd[90]:.2f}; "
              f"emulator released packets late by {late[0]} ms on average, {late[1]} at most")
        assert len(owd) == 100
        # The floor and the median are the emulator's; the tail also holds the sender's and
        # receiver's scheduling on a shared machine, so it gets a looser bound.
        assert want <= owd[0] and owd[50] < want + 2 and owd[90] < want + 10
        assert late[0] < 1.0


def test_random_and_bursty_loss_on_real_packets(rooted, tmp_path: Path):
    ge = GilbertElliott.from_mean(0.05, 4.0)
    spec = LinkSpec(ab=DirSpec(loss=0.10), ba=DirSpec(burst=ge), seed=3)
    with Link(spec) as link:
        rx_b = receiver(link, "b", tmp_path / "b.json", idle=0.5)
        rx_a = receiver(link, "a", tmp_path / "a.json", idle=0.5)
        flows = [sender(link, w, "--rate", "4e6", "--count", "4000", "--size", "100")
                 for w in ("a", "b")]
        sent = [sent_count(f) for f in flows]
        ab, ba = finish(rx_b, tmp_path / "b.json"), finish(rx_a, tmp_path / "a.json")
    rand_lost = ab.missing(sent[0])
    burst_lost = ba.missing(sent[1])

    def runs(missing: list[int]) -> list[int]:
        out: list[int] = []
        for i, s in enumerate(missing):
            if i and missing[i - 1] == s - 1:
                out[-1] += 1
            else:
                out.append(1)
        return out

    mean_run = statistics.mean(runs(rand_lost)), statistics.mean(runs(burst_lost))
    print(f"\nrandom: {len(rand_lost)}/{sent[0]} lost, mean run {mean_run[0]:.2f}; "
          f"bursty: {len(burst_lost)}/{sent[1]}, mean run {mean_run[1]:.2f}")
    assert len(rand_lost) / sent[0] == pytest.approx(0.10, abs=0.02)
    assert mean_run[0] < 1.3
    assert len(burst_lost) / sent[1] == pytest.approx(0.05, abs=0.02)
    assert 2.5 < mean_run[1] < 6.5
    # what the receivers missed is exactly what the emulator says it lost
    assert link.log.summary("ab")["lost_pkts"] == len(rand_lost)
    assert link.log.summary("ba")["lost_pkts"] == len(burst_lost)


def test_capacity_schedule_and_set_rate(rooted, tmp_path: Path):
    spec = LinkSpec(ab=DirSpec(rate_bps=2_000_000, queue_ms=100, schedule=((2.0, 500_000),)),
                    ba=DirSpec())
    with Link(spec) as link:
        rx = receiver(link, "b", tmp_path / "rx.json")
        flow = sender(link, "a", "--rate", "3e6", "--seconds", "5")
        time.sleep(max(0.0, 3.5 - link.elapsed()))
        t_set = link.set_rate("ab", 1_000_000)
        sent_count(flow)
        cap = finish(rx, tmp_path / "rx.json")
    t0 = link.t0

    def rate(a: float, b: float) -> float:  # link time -> received bits/s
        return cap.throughput_bps(t0 + a, t0 + b)

    first = cap.recv_ns[0] / 1e9 - t0  # the sender's start: later on a busy machine
    assert first < 1.5
    got = (rate(first + 0.1, 2.0), rate(2.2, 3.5), rate(t_set + 0.2, first + 4.9))
    print(f"\nset_rate at {t_set:.2f} s; received {[round(r) for r in got]} bps")
    assert got[0] == pytest.approx(2_000_000, rel=0.15)
    assert got[1] == pytest.approx(500_000, rel=0.15)
    assert got[2] == pytest.approx(1_000_000, rel=0.15)
    assert [r for _, d, r in link.log.rates if d == "ab"] == [2e6, 5e5, 1e6]
    assert link.log.summary("ab", 2.2, 3.5)["capacity_bps"] == 500_000
    bins = link.log.timeline("ab", 0.5)
    assert [b["capacity_bps"] for b in bins[3:6]] == [2_000_000, 500_000, 500_000]


def test_namespaces_are_sealed_and_cleaned_up(rooted):
    link = Link("clean")
    with link:
        assert netns.exists(link.ns_a) and netns.exists(link.ns_b)
        routes = link.run_in("a", ["ip", "-4", "route"], capture_output=True, text=True)
        assert routes.stdout.split()[:3] == ["10.77.0.0/30", "dev", "tk0"]
        assert len(routes.stdout.strip().splitlines()) == 1  # no way out but the link
        sock = link.socket_in("a")
        with sock, pytest.raises(OSError) as e:
            sock.sendto(b"x", ("192.0.2.1", 9))
        assert e.value.errno == errno.ENETUNREACH
        sleeper = link.popen_in("b", ["sleep", "60"])
        emulator = link._proc
    assert sleeper.poll() is not None and emulator is not None and emulator.poll() is not None
    assert not netns.exists(link.ns_a) and not netns.exists(link.ns_b)

    for exc in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(exc):
            with Link("rural") as link:
                link.popen_in("a", ["sleep", "60"])
                raise exc()
        assert not netns.exists(link.ns_a) and not netns.exists(link.ns_b)
    assert not [n for n in netns.ours() if n.split("-")[2] == str(os.getpid())]


async def test_async_link_and_cli(rooted, tmp_path: Path):
    async with Link("rural") as link:
        proc = await link.exec_in("b", ["ip", "-4", "-o", "addr", "show", "dev", "tk0"],
                                  stdout=subprocess.PIPE)
        out, _ = await proc.communicate()
        assert "10.77.0.2/30" in out.decode()
        assert link.stats()["ab"]["rate_bps"] == 300_000
        wrapped_ip = link.wrap("a", "ip")
        out = subprocess.run([wrapped_ip, "-4", "-o", "addr"], capture_output=True, text=True)
        assert "10.77.0.1/30" in out.stdout
    assert not netns.exists(link.ns_b) and not Path(wrapped_ip).exists()

    log = tmp_path / "cli.csv"
    cli = subprocess.run(
        [PY, "-m", "bench.netlab", "--scenario", "clean", "--seconds", "10", "--log", str(log),
         "--", PY, "-m", "bench.netlab.traffic", "send", "--to", "10.77.0.1", "--count", "20",
         "--rate", "1e5"],
        capture_output=True, text=True, cwd=ROOT, timeout=30,
    )
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert json.loads(lines[0])["addr_b"] == "10.77.0.2"
    ba = json.loads(lines[-1])
    assert ba["direction"] == "ba" and ba["offered_pkts"] == 20
    rows = log.read_text().splitlines()
    assert rows[0] == "t,dir,size,status,qdelay_ms"
    assert sum(",ba,1200,delivered," in r for r in rows) == 20  # ab: ICMP port unreachable
