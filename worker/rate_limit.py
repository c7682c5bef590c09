"""One rate limit per Kaleyra account, shared by every worker process on every host through Redis,
and an adaptive pace under it that bursts of E403s cut and time restores (AIMD).

A reservation scheme (GCRA): each request reserves its messages' share of the account's time
line in one Lua script (`redis_model.account_rate`), on Redis's clock, and sleeps until its
turn, so workers never poll and the event loop is never blocked. The pace is the lower of
`campaign limit` and the adaptive pace: a burst of E403s or 429s (a quarter of the requests or
more) halves the pace, at most once per cooldown, and it then grows back linearly to where it
was, where the adaptive pace ends. Without a limit the cut starts from the rate sent over the
last second. Everything is read at each reservation, so a change takes effect at every
worker's next request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from redis_model.account_rate import AccountRate
from schemas.campaign import Recipient
from worker.metrics import count_rate_cut, observe_rate_wait
from worker.stops import DailyCapReached

# A chunk is at most this share of a second's budget, so that no one-second window can hold
# much more than the limit; and bulk books at most this far ahead, so that urgent requests
# (which go first) and a new limit push the account past its limit for no more than a moment.
MAX_CHUNK_SHARE = 0.05
MAX_AHEAD_S = 0.1
# AIMD: an E403 burst multiplies the pace by this; it grows back to where it was in RECOVERY_S.
DECREASE = 0.5
RECOVERY_S = 10.0
COOLDOWN_S = 1.0  # one burst is one cut, however many requests saw it
# A burst: at least this share of the last second or two's requests pushed back. A steady few
# E403s are retried, not read as a signal, or the pace would halve every second toward the floor.
BURST_SHARE, BURST_MIN_REQUESTS = 0.25, 10
FLOOR, FLOOR_SHARE = 1.0, 0.05  # messages per second, and share of where the cut started


class AccountRateLimit:
    def __init__(self, client: aioredis.Redis, sid: str) -> None:
        self._line = AccountRate(client, sid)
        # Whether the last reservation was paced (a limit, or a cut not yet recovered): a booked turn
        # is then a slot in time, to be used at once; without one it may be asked ahead.
        self.limited = False

    async def wait_turn(self, messages: int, *, urgent: bool = False, counted: bool = True) -> int:
        """Book up to `messages` (fewer under a limit: a chunk is a small share of a second; fewer than
        what is left of the daily cap) and sleep until they may go; returns how many were booked. Without
        a limit, all of them at once. `DailyCapReached` when none is left today. Not `counted`: outside the
        daily cap (a status query)."""
        booked, _ = await self._book(messages, urgent, None, counted=counted)
        return booked

    async def give_back(self, messages: int) -> None:
        """Booked but not sent: not counted against the daily cap."""
        await self._line.give_back(messages)

    async def wait_turn_looking_up(
        self, recipients: Sequence[Recipient], *, urgent: bool = False
    ) -> tuple[int, list[int]]:
        """`wait_turn` for the recipients, and in the same round trip the 0-based positions of those
        booked whose numbers are on the account's suppression list now."""
        return await self._book(len(recipients), urgent, recipients)

    async def _book(
        self, messages: int, urgent: bool, looking_up: Sequence[Recipient] | None, *, counted: bool = True
    ) -> tuple[int, list[int]]:
        while True:
            booking = await self._line.reserve(
                messages,
                urgent=urgent,
                max_ahead_s=MAX_AHEAD_S,
                max_share=MAX_CHUNK_SHARE,
                looking_up=looking_up,
                counted=counted,
            )
            self.limited = booking.limited
            if booking.capped:  # not slept through: until the next day, the thread has better uses
                raise DailyCapReached(booking.wait_s)
            if booking.wait_s > 0:
                observe_rate_wait(booking.wait_s, urgent=urgent)
                await asyncio.sleep(booking.wait_s)
            if booking.granted:
                return booking.granted, booking.listed

    async def wait_turn_for_all(self, messages: int, *, urgent: bool = False) -> None:
        """Book exactly `messages` (a retry of a chunk already cut), in as many turns as it takes."""
        while messages > 0:
            messages -= await self.wait_turn(messages, urgent=urgent)

    async def back_off(self) -> float:
        """The gateway pushed back (E403, 429): cut the pace; returns the new pace, 0 if not cut."""
        pace = await self._line.cut_pace(
            decrease=DECREASE, recovery_s=RECOVERY_S, cooldown_s=COOLDOWN_S, floor=FLOOR,
            floor_share=FLOOR_SHARE, burst_share=BURST_SHARE, burst_min_requests=BURST_MIN_REQUESTS,
        )  # fmt: skip
        if pace:
            count_rate_cut()
        return pace
