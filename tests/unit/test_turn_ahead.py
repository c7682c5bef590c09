"""The next chunk's turn, asked while a chunk's POST is in flight: taken when the job moves on,
dropped (its booking let go, nothing left running) when it stops."""

from __future__ import annotations

import asyncio

from schemas.campaign import Recipient
from worker.sending import _cut_at_opt_outs, _TurnAhead


class _Turn:
    """A stand-in for the rate-limit booking and look-up: records whether it ran to its end."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds, self.finished, self.cancelled = seconds, False, False

    async def __call__(self) -> tuple[int, list[int]]:
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return 1000, [3]


def test_the_turn_asked_for_the_next_offset_is_taken():
    async def steps():
        ahead, turn = _TurnAhead(), _Turn()
        ahead.ask(turn())
        return await ahead.take(), await ahead.take()

    assert asyncio.run(steps()) == ((1000, [3]), None)  # taken once


def test_a_turn_whose_asking_failed_is_taken_as_none_so_it_is_asked_again():
    """A Redis blip during the previous POST is no reason to fail the job now."""

    async def failing() -> tuple[int, list[int]]:
        raise ConnectionError("Redis went away")

    async def steps():
        ahead = _TurnAhead()
        ahead.ask(failing())
        return await ahead.take()

    assert asyncio.run(steps()) is None


def test_dropping_cancels_a_turn_still_waiting_and_retrieves_a_failed_one():
    waiting = _Turn(seconds=10)

    async def failing() -> tuple[int, list[int]]:
        raise ConnectionError("Redis went away")

    async def steps():
        ahead = _TurnAhead()
        ahead.ask(waiting())
        await asyncio.sleep(0)
        await ahead.drop()
        ahead.ask(failing())
        await asyncio.sleep(0)
        await ahead.drop()  # its error is retrieved here, not reported as never retrieved
        await ahead.drop()  # nothing left: a no-op

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
    chunk = [Recipient(f"+9190000000{i:02d}", i + 2) for i in range(10)]
    # Looked up over the whole chunk; the rate limit booked 4: a listed number past them waits.
    assert _cut_at_opt_outs(chunk[:4], [6, 7]) == (chunk[:4], False)
    assert _cut_at_opt_outs(chunk[:4], [2, 6]) == (chunk[:2], False)  # sent up to the first
    assert _cut_at_opt_outs(chunk[:4], [0, 1, 3]) == (chunk[:2], True)  # the leading run, failed
