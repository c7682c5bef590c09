"""The workers' coroutines run on uvloop: the loop of dramatiq's AsyncIO middleware, once booted.
(Every test that starts a worker sends its campaigns on it.)"""

from __future__ import annotations

import asyncio

import uvloop
from dramatiq.asyncio import get_event_loop_thread


def test_a_booted_worker_runs_coroutines_on_a_uvloop_event_loop(simulator, start_worker, make_settings):
    start_worker(make_settings(simulator.base_url), threads=1)
    loop_thread = get_event_loop_thread()
    assert loop_thread is not None

    async def running_loop() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    assert isinstance(loop_thread.run_coroutine(running_loop()), uvloop.Loop)
