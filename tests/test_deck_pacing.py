"""The deck pacer on a fake clock: the token bucket, the chunked writer that follows a changing
rate and lets the rest go once the page need not be paced, and who is paced at all."""

from __future__ import annotations

import pytest

from server.room import RoomRegistry
from server.slides.pacing import (
    BURST_BYTES,
    CHUNK_BYTES,
    RECHECK_S,
    DeckPacing,
    TokenBucket,
    write_paced,
)
from server.tokens import TokenIssuer
from tests.conftest import TEST_SECRET


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def test_bucket_lets_one_burst_go_then_holds_the_rate():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock)
    assert bucket.reserve(1000, 500) == 0  # full at the start
    assert bucket.reserve(500, 500) == pytest.approx(1.0)  # 500 bytes at 500 B/s
    clock.now += 1.0
    assert bucket.reserve(500, 500) == pytest.approx(1.0)  # the first debt is paid, a new one


def test_bucket_does_not_save_up_an_idle_time():
    clock = FakeClock()
    bucket = TokenBucket(1000, clock)
    bucket.reserve(1000, 100)
    clock.now += 3600  # an hour without sending
    assert bucket.reserve(1000, 100) == 0
    assert bucket.reserve(100, 100) == pytest.approx(1.0)  # at most one burst was kept


def test_a_wait_follows_a_rate_that_changes_during_it():
    clock = FakeClock()
    bucket = TokenBucket(0, clock)
    assert bucket.reserve(1000, 1000) == pytest.approx(1.0)
    clock.now += 0.5  # 500 bytes' tokens came at 1000 B/s; now the estimate falls to 250 B/s
    assert bucket.reserve(0, 250) == pytest.approx(2.0)
    clock.now += 1.0
    assert bucket.reserve(0, 1000) == pytest.approx(0.25)  # 250 came, 250 left at 1000 B/s


def test_bucket_takes_a_chunk_larger_than_its_capacity():
    clock = FakeClock()
    bucket = TokenBucket(100, clock)
    assert bucket.reserve(1100, 1000) == pytest.approx(1.0)


async def test_paced_body_takes_its_size_over_the_rate():
    clock = FakeClock()
    writes: list[tuple[float, int]] = []

    async def write(data: bytes) -> None:
        writes.append((clock.now, len(data)))

    body = bytes(range(256)) * 200  # 51,200 bytes
    rate_bps = 64_000.0  # 8,000 bytes/s
    whole = await write_paced(
        write, body, lambda: rate_bps, TokenBucket(BURST_BYTES, clock), sleep=clock.sleep
    )
    assert whole
    assert sum(n for _, n in writes) == len(body)
    assert max(n for _, n in writes) <= CHUNK_BYTES
    took = writes[-1][0] - writes[0][0]
    # everything after the first burst at 8,000 bytes/s
    assert took == pytest.approx((len(body) - BURST_BYTES) / 8000, rel=1e-6)
    # no second in which more than the rate plus one chunk went out
    for start, _ in writes:
        sent = sum(n for t, n in writes if start <= t < start + 1.0)
        assert sent <= 8000 + CHUNK_BYTES


async def test_pacing_follows_the_rate_as_it_changes():
    clock = FakeClock()
    times: list[float] = []

    async def write(data: bytes) -> None:
        times.append(clock.now)

    start = clock.now

    def rate() -> float:  # the estimate halves after 2.05 s
        return 96_000.0 if clock.now - start < 2.05 else 48_000.0

    body = b"x" * (CHUNK_BYTES * 40)  # 48,000 bytes
    await write_paced(write, body, rate, TokenBucket(BURST_BYTES, clock), sleep=clock.sleep)
    # one chunk at once, 24,600 bytes in 2.05 s at 12,000 B/s, the other 22,200 at 6,000 B/s
    # (the rate is read again every RECHECK_S)
    assert times[-1] - start == pytest.approx(2.05 + 22_200 / 6000, abs=RECHECK_S)


async def test_the_rest_goes_at_once_when_the_page_need_not_be_paced():
    clock = FakeClock()
    writes: list[tuple[float, bytes]] = []

    async def write(data: bytes) -> None:
        writes.append((clock.now, data))

    turned_at = clock.now + 1.0

    def rate() -> float | None:  # the room turns to this page after 1 s
        return None if clock.now >= turned_at else 8_000.0

    body = bytes(i % 251 for i in range(20_000))
    whole = await write_paced(write, body, rate, TokenBucket(BURST_BYTES, clock), sleep=clock.sleep)
    assert not whole
    assert b"".join(d for _, d in writes) == body
    # noticed while waiting for tokens, not only at the next chunk (1.2 s at this rate)
    assert writes[-1][0] - turned_at <= 0.1 + 1e-9
    assert len(writes[-1][1]) > 10_000  # the remainder in one write


def test_who_is_paced_without_being_in_a_room():
    issuer = TokenIssuer(TEST_SECRET)
    pacing = DeckPacing(issuer, RoomRegistry())
    token = issuer.mint("math7", "classroom", "七(1)班")
    deck = "a" * 64
    assert pacing.pace(None, deck, 2, False) is None  # no token: a preview, a replay
    assert pacing.pace("Bearer not-a-token", deck, 2, False) is None  # pages need no token
    assert pacing.pace(f"Bearer {token}", deck, 2, False) is None  # the room is not live
    other = TokenIssuer("x" * 40).mint("math7", "classroom", "七(1)班")
    assert pacing.pace(f"Bearer {other}", deck, 2, False) is None  # forged
