"""The next chunk's turn, asked while a chunk's POST is in flight: taken when the job moves on as
expected, dropped (its booking let go, nothing left running) when it does not."""

from __future__ import annotations

import asyncio

from worker.sending import _TurnAhead


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
        ahead.ask(1000, turn())
        return await ahead.take(1000), await ahead.take(1000)

    assert asyncio.run(steps()) == ((1000, [3]), None)  # taken once


def test_a_turn_for_another_offset_is_dropped_and_none_is_returned():
    """Another worker moved the job on: the progress is not where the turn was asked for."""
    turn = _Turn(seconds=10)

    async def steps():
        ahead = _TurnAhead()
        ahead.ask(1000, turn())
        await asyncio.sleep(0)  # the booking is under way
        return await ahead.take(2000)

    assert asyncio.run(steps()) is None
    assert turn.cancelled and not turn.finished


def test_dropping_cancels_a_turn_still_waiting_and_retrieves_a_failed_one():
    waiting = _Turn(seconds=10)

    async def failing() -> tuple[int, list[int]]:
        raise ConnectionError("Redis went away")

    async def steps():
        ahead = _TurnAhead()
        ahead.ask(1000, waiting())
        await asyncio.sleep(0)
        await ahead.drop()
        ahead.ask(2000, failing())
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
