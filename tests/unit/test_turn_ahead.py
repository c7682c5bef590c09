"""A chunk's turn: booked ahead while the previous chunk's POST is in flight and taken when the job
gets there, else booked then; dropped (its booking let go, nothing left running) when the job stops."""

from __future__ import annotations

import asyncio

from schemas.campaign import Recipient
from worker.turns import Turn, TurnAhead, cut_at_opt_outs

CHUNK = [Recipient(f"+9190000000{i:02d}", i + 2) for i in range(10)]


class _RateLimit:
    """A stand-in for `AccountRateLimit`: books every message, finds position 3 listed, notes each."""

    def __init__(self, seconds: float = 0.0, error: Exception | None = None) -> None:
        self.seconds, self.error, self.limited = seconds, error, False
        self.booked: list[int] = []
        self.finished = self.cancelled = False

    async def wait_turn(self, messages: int, *, urgent: bool = False) -> int:
        booked, _ = await self.wait_turn_looking_up(CHUNK[:messages], urgent=urgent)
        return booked

    async def wait_turn_looking_up(self, recipients, *, urgent: bool = False) -> tuple[int, list[int]]:
        self.booked.append(len(recipients))
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self.error is not None:
            error, self.error = self.error, None  # fails once: booking again then succeeds
            raise error
        self.finished = True
        return len(recipients), [3]


def test_the_turn_booked_ahead_for_the_next_offset_is_taken_once():
    rate_limit = _RateLimit()

    async def steps():
        turns = TurnAhead(rate_limit, urgent=False, marketing=True)  # type: ignore[arg-type]
        turns.book_ahead(4, CHUNK[4:8])
        return await turns.take(4, CHUNK[4:8]), await turns.take(8, CHUNK[8:])

    assert asyncio.run(steps()) == (Turn(4, [3]), Turn(2, [3]))
    assert rate_limit.booked == [4, 2]  # the second was booked when taken


def test_a_turn_booked_ahead_for_another_offset_is_dropped_and_booked_again():
    rate_limit = _RateLimit(seconds=10)

    async def steps():
        turns = TurnAhead(rate_limit, urgent=False, marketing=True)  # type: ignore[arg-type]
        turns.book_ahead(4, CHUNK[4:8])
        await asyncio.sleep(0)
        rate_limit.seconds = 0
        return await turns.take(6, CHUNK[6:])

    assert asyncio.run(steps()) == Turn(4, [3])
    assert rate_limit.cancelled and rate_limit.booked == [4, 4]


def test_a_turn_whose_booking_failed_is_booked_again_when_taken():
    """A Redis blip during the previous POST is no reason to fail the job now."""
    rate_limit = _RateLimit(error=ConnectionError("Redis went away"))

    async def steps():
        turns = TurnAhead(rate_limit, urgent=False, marketing=True)  # type: ignore[arg-type]
        turns.book_ahead(0, CHUNK)
        return await turns.take(0, CHUNK)

    assert asyncio.run(steps()) == Turn(10, [3])
    assert rate_limit.booked == [10, 10]


def test_under_a_limit_no_turn_is_booked_ahead():
    """A turn is then a slot in time, used at once."""
    rate_limit = _RateLimit()
    rate_limit.limited = True

    async def steps():
        turns = TurnAhead(rate_limit, urgent=False, marketing=False)  # type: ignore[arg-type]
        turns.book_ahead(0, CHUNK)
        await asyncio.sleep(0)
        return list(rate_limit.booked)

    assert asyncio.run(steps()) == []


def test_dropping_cancels_a_turn_still_waiting_and_retrieves_a_failed_one():
    waiting = _RateLimit(seconds=10)
    failing = _RateLimit(error=ConnectionError("Redis went away"))

    async def steps():
        turns = TurnAhead(waiting, urgent=False, marketing=True)  # type: ignore[arg-type]
        turns.book_ahead(0, CHUNK)
        await asyncio.sleep(0)
        await turns.drop()
        turns = TurnAhead(failing, urgent=False, marketing=True)  # type: ignore[arg-type]
        turns.book_ahead(0, CHUNK)
        await asyncio.sleep(0)
        await turns.drop()  # its error is retrieved here, not reported as never retrieved
        await turns.drop()  # nothing left: a no-op

    loop_errors = []

    def run():
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, context: loop_errors.append(context))
        try:
            loop.run_until_complete(steps())
        finally:
            loop.close()

    run()
    assert waiting.cancelled and not waiting.finished
    assert loop_errors == []


def test_a_chunk_is_cut_at_opt_outs_within_what_was_booked():
    chunk = CHUNK
    # Looked up over the whole chunk; the rate limit booked 4: a listed number past them waits.
    assert cut_at_opt_outs(chunk[:4], [6, 7]) == (chunk[:4], False)
    assert cut_at_opt_outs(chunk[:4], [2, 6]) == (chunk[:2], False)  # sent up to the first
    assert cut_at_opt_outs(chunk[:4], [0, 1, 3]) == (chunk[:2], True)  # the leading run, failed
    assert Turn(4, [0, 1, 3]).cut(chunk) == (chunk[:2], True)
