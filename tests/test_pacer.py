"""The pacer and the NACK budget."""

import asyncio
import time

from media import policy
from media.pacer import NackBudget, Pacer


def rtp(ssrc: int, size: int = 1000) -> bytes:
    return bytes([0x80, 96, 0, 0, 0, 0, 0, 0]) + ssrc.to_bytes(4, "big") + bytes(size - 12)


def rtcp() -> bytes:
    return bytes([0x80, 201]) + bytes(30)


async def test_burst_leaves_at_the_pacing_rate_and_rtcp_is_never_held():
    sent: list[tuple[float, int]] = []

    async def sink(data: bytes) -> None:
        sent.append((time.monotonic(), len(data)))

    pacer = Pacer(lambda ssrc: None, rate_bps=400_000)
    pacer.attach(sink)
    start = time.monotonic()
    for _ in range(20):  # a 20 KB keyframe handed over at once
        await pacer.send(rtp(1))
    await pacer.send(rtcp())
    assert sent[-1][1] == 32 and sent[-1][0] - start < 0.01  # RTCP went straight through
    await asyncio.sleep(0.5)
    assert len(sent) == 21
    media = [t for t, size in sent if size == 1000]
    # 20 KB at 400 kbit/s: ~0.4 s, not a burst
    assert 0.3 < media[-1] - media[0] < 0.5
    pacer.close()


async def test_copies_and_resends_wait_behind_the_originals_of_a_burst():
    """A slide change's packets reach the classroom first; their loss-protection copies
    (RTX) follow, instead of doubling the time until the new picture is complete."""
    order: list[int] = []

    async def sink(data: bytes) -> None:
        order.append(int.from_bytes(data[8:12], "big"))

    pacer = Pacer(lambda ssrc: None, rate_bps=400_000)
    pacer.attach(sink)
    pacer.rtx_ssrcs.add(2)
    for _ in range(3):  # original, its copy, original, its copy ...
        await pacer.send(rtp(1))
        await pacer.send(rtp(2))
    await asyncio.sleep(0.2)
    assert order == [1, 1, 1, 2, 2, 2]  # the first went straight out, the copies last
    pacer.close()


async def test_audio_jumps_the_video_queue():
    order: list[int] = []

    async def sink(data: bytes) -> None:
        order.append(int.from_bytes(data[8:12], "big"))

    pacer = Pacer(lambda ssrc: None, rate_bps=200_000)
    pacer.attach(sink)
    pacer.audio_ssrcs.add(7)
    for _ in range(5):
        await pacer.send(rtp(1))
    await pacer.send(rtp(7, 100))
    await asyncio.sleep(0.3)
    assert order.index(7) <= 2  # ahead of the queued video
    pacer.close()


async def test_stale_video_is_dropped_and_its_stream_reported(monkeypatch):
    monkeypatch.setattr(policy, "PACER_MAX_QUEUE_S", 0.1)
    dropped: list[int] = []

    async def sink(data: bytes) -> None:
        pass

    pacer = Pacer(dropped.append, rate_bps=50_000)  # 1000-byte packets: 6 per second
    pacer.attach(sink)
    for _ in range(10):
        await pacer.send(rtp(42))
    await asyncio.sleep(0.5)
    assert dropped and set(dropped) == {42}
    assert pacer.dropped_packets >= 5
    pacer.close()


def test_nack_budget_caps_resends_per_packet_and_share_of_rate():
    budget = NackBudget()
    budget.set_estimate(1_000_000)  # 150 kbit/s for retransmissions
    t = 100.0
    assert budget.allow(5, t + 1)
    assert budget.allow(5, t + 2)
    assert not budget.allow(5, t + 3)  # a third time: no
    granted = sum(budget.allow(1000 + i, t + 3 + i * 0.001) for i in range(1000))
    # one second of NACK storm: about 150 kbit/s of 1200-byte packets, plus the banked quarter s
    assert granted <= (150_000 / 8 * 1.25) / 1200 + 2


def test_nack_budget_lets_single_losses_through_on_a_slow_link():
    budget = NackBudget()
    budget.set_estimate(150_000, rtt=0.15)  # 22.5 kbit/s share: less than a packet a quarter s
    t = 10.0
    budget.sent((1, 7), 1100, t)
    assert budget.allow((1, 7), t + 0.2)
    assert not budget.allow((1, 7), t + 0.25)  # the receiver's retry crossed our resend
    assert budget.allow((1, 7), t + 0.4)  # one RTT later: the resend itself was lost


def test_nack_budget_refuses_packets_the_receiver_has_given_up_on():
    budget = NackBudget()
    budget.set_estimate(1_000_000, rtt=0.1)
    budget.sent((1, 9), 1000, 0.0)
    assert not budget.allow((1, 9), 0.6)
    budget.sent((2, 9), 1000, 0.5)  # another stream's packet with the same number
    assert budget.allow((2, 9), 0.6)
