"""The account's turn for a job's chunk: booked (opt-outs looked up) before its claim, the next one
booked ahead while this chunk's POST is in flight."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, NamedTuple

from schemas.campaign import Recipient
from worker.rate_limit import AccountRateLimit


class Turn(NamedTuple):
    """The account's turn for a chunk: how many of its messages were booked (a limit may grant fewer)
    and, for marketing, the positions in the chunk of numbers on the suppression list now."""

    booked: int
    listed: list[int]

    def cut(self, chunk: Sequence[Recipient]) -> tuple[Sequence[Recipient], bool]:
        """The part of `chunk` this turn sends (see `cut_at_opt_outs`), and whether it opted out."""
        return cut_at_opt_outs(chunk[: self.booked], self.listed)


class TurnAhead:
    """One job's run's turns, a chunk at a time: `take` gives the chunk at an offset its turn (the one
    booked ahead for it, else one booked now); `book_ahead` books the next chunk's turn while this
    chunk's POST is in flight, so that the next POST waits on neither round trip; `drop` lets a turn
    not taken go (the POST failed, the job stops): its booking goes unused.

    Booking is before the claim: a Redis error then leaves nothing claimed."""

    def __init__(self, rate_limit: AccountRateLimit, *, urgent: bool, marketing: bool) -> None:
        self._rate_limit = rate_limit
        self._urgent = urgent
        self._marketing = marketing
        self._ahead: asyncio.Task[Turn] | None = None
        self._ahead_offset = -1  # the offset of the chunk booked ahead

    async def take(self, offset: int, chunk: Sequence[Recipient]) -> Turn:
        """The turn of `chunk`, the job's recipients from `offset` on."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            if self._ahead_offset != offset:
                await _given_back(ahead, self._rate_limit)
            else:
                try:
                    return await ahead
                except Exception:  # a Redis blip during the last POST is no reason to fail the job now
                    pass
        return await self._book(chunk)

    def book_ahead(self, offset: int, chunk: Sequence[Recipient]) -> None:
        """Book the turn of the chunk at `offset` now, for `take` to find. Not under a limit: a turn is
        then a slot in time, used at once; booked ahead, a stalled POST would leave it to go late,
        together with other jobs' (a burst)."""
        assert self._ahead is None, "one turn ahead at a time"
        if self._rate_limit.limited:
            return
        self._ahead_offset = offset
        self._ahead = asyncio.ensure_future(self._book(chunk))

    async def drop(self) -> None:
        """The turn booked ahead is not taken: not counted against the daily cap."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            await _given_back(ahead, self._rate_limit)

    async def _book(self, chunk: Sequence[Recipient]) -> Turn:
        if not self._marketing:
            return Turn(await self._rate_limit.wait_turn(len(chunk), urgent=self._urgent), [])
        return Turn(*await self._rate_limit.wait_turn_looking_up(chunk, urgent=self._urgent))


async def _given_back(ahead: asyncio.Task[Turn], rate_limit: AccountRateLimit) -> None:
    """A turn booked ahead and not taken: given back to the daily cap once booked; cancelled while
    still booking (a booking its script made just then stays counted: a few messages at most)."""
    if ahead.done() and not ahead.cancelled() and ahead.exception() is None:
        await rate_limit.give_back(ahead.result().booked)
    else:
        await _cancelled(ahead)


async def _cancelled(task: asyncio.Task[Any]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)  # retrieved: never "exception never retrieved"


def cut_at_opt_outs(chunk: Sequence[Recipient], listed: list[int]) -> tuple[Sequence[Recipient], bool]:
    """Numbers put on the suppression list since the campaign was published are not sent. The chunk
    is cut so that each outcome stays whole: (the leading run of opted-out numbers, True), else
    (the recipients before the first of them, False). `listed`: their positions, ascending, some
    perhaps past the chunk's end (it was cut to what the rate limit booked)."""
    listed = [i for i in listed if i < len(chunk)]
    if not listed:
        return chunk, False
    if listed[0] > 0:
        return chunk[: listed[0]], False
    run = 1
    while run < len(listed) and listed[run] == run:
        run += 1
    return chunk[:run], True
