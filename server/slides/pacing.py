"""Deck pages beside the live lesson: which page goes at once and which one is paced.

On a 300 kbps link a page sent as fast as TCP goes fills the same small bottleneck queue as the
lesson's audio and video, and the class hears and sees it. So:
- the page the room shows now goes at once (the class must see it now);
- any other page (a prefetch) asked for by a member who is in a room is written in small chunks,
  paced by a token bucket at what that member's bandwidth estimate leaves after its live audio
  and video (`SubscriberLink.spare_bps`, re-read at every chunk, never below
  media/policy.DOC_MIN_BPS); when the room turns to that page, or the member leaves, the rest
  goes at once;
- a request from nobody in a room (the teacher's preview, a replay) is not paced.
The member is known from `Authorization: Bearer <token>`, never from the URL: one URL per page
for every classroom is what keeps pages cacheable and immutable.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..tokens import TokenError, TokenIssuer

if TYPE_CHECKING:
    from ..room import RoomRegistry
    from ..session import Session

# About one packet on the link: a paced page never puts more than a packet ahead of the
# lesson's media in the bottleneck queue.
CHUNK_BYTES = 1200
# The bucket holds at most one chunk: an idle moment is not saved up into a burst.
BURST_BYTES = CHUNK_BYTES
# While a chunk waits for tokens, the rate (and whether the room turned to the page) is read
# again this often.
RECHECK_S = 0.1
MIN_RATE_BYTES = 1.0  # guards a division: spare_bps is never below DOC_MIN_BPS anyway
MIN_WAIT_S = 1e-4  # a shorter wait is none (and a float clock may never get past it)

Rate = Callable[[], "float | None"]  # bits/s now; None: not (or no longer) paced


class TokenBucket:
    """Bytes may leave at a rate with at most `capacity` at once. Each call gives the rate that
    holds until the next one, so a changing estimate is followed as the page goes."""

    def __init__(self, capacity: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity  # the first chunk goes at once
        self._at = clock()
        self._rate = 0.0  # bytes/s since _at

    def reserve(self, size: int, rate: float) -> float:
        """Take `size` bytes' tokens at `rate` bytes/s from now on; the seconds to wait before
        sending them (0: now). The tokens may go negative: the debt is the wait. reserve(0, r)
        is what is left of the wait at a new rate r."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self._rate)
        self._at, self._rate = now, max(rate, MIN_RATE_BYTES)
        self._tokens -= size
        wait = -self._tokens / self._rate
        return wait if wait > MIN_WAIT_S else 0.0


async def write_paced(
    write: Callable[[bytes], Awaitable[None]],
    body: bytes,
    rate: Rate,
    bucket: TokenBucket,
    chunk: int = CHUNK_BYTES,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> bool:
    """Write `body` in chunks at rate() bits/s; once rate() is None, the rest at once.
    Returns whether the whole body went paced."""
    view = memoryview(body)
    for start in range(0, len(body), chunk):
        bps = rate()
        piece = view[start : start + chunk]
        wait = 0.0 if bps is None else bucket.reserve(len(piece), bps / 8)
        while bps is not None and wait > 0:
            await sleep(min(wait, RECHECK_S))
            bps = rate()
            if bps is not None:  # what is left of the wait, at the rate of now
                wait = bucket.reserve(0, bps / 8)
        if bps is None:
            await write(bytes(view[start:]))
            return False
        await write(bytes(piece))
    return True


@dataclass(frozen=True)
class Pace:
    rate: Rate
    bucket: TokenBucket  # the member's: its paced pages together stay within the spare rate


class DeckPacing:
    """Decides, per page request, whether and at what rate it is paced (see the module)."""

    def __init__(self, issuer: TokenIssuer, rooms: RoomRegistry) -> None:
        self._issuer = issuer
        self._rooms = rooms
        # one bucket per member's session, gone with it
        self._buckets: weakref.WeakKeyDictionary[Session, TokenBucket] = (
            weakref.WeakKeyDictionary()
        )

    def pace(self, authorization: str | None, deck: str, page: int, thumb: bool) -> Pace | None:
        """How to pace this page, its rate re-read as it goes; None: send it at once."""
        if not authorization:
            return None
        try:
            identity = self._issuer.verify_request(None, authorization)
        except TokenError:
            return None  # pages need no token: a stale one only loses the pacing

        def member() -> Session | None:
            room = self._rooms.get(identity.room)
            found = room.participants.get(identity.id) if room is not None else None
            if room is None or found is None:
                return None  # not (or no longer) in a room: no lesson to protect
            board = room.slides
            shown = board.deck is not None and board.deck["id"] == deck and board.page == page
            if shown and not thumb:
                return None  # the class must see it now
            return found.session

        def spare() -> float | None:
            session = member()
            return session.link.spare_bps() if session is not None else None

        session = member()
        if session is None:
            return None
        bucket = self._buckets.get(session)
        if bucket is None:
            bucket = self._buckets[session] = TokenBucket(BURST_BYTES)
        return Pace(spare, bucket)
