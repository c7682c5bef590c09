"""A loop of passes on a worker process's event loop (the delivery poller, the callbacks' sender), from
`begin()` until `end()`: it sleeps between passes and wakes at once when the worker stops."""

from __future__ import annotations

import asyncio
import contextlib

from worker.context import WorkerContext

# How long a pass in progress may finish once the loop is told to end, before it is cancelled.
END_GRACE_S = 2.0


class BackgroundLoop:
    """Subclasses write `_run` (a loop on `_stopped`, sleeping with `_pause`)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self.ctx = ctx
        self._task: asyncio.Task[None] | None = None
        self._stopping: asyncio.Event | None = None

    def begin(self) -> None:
        """Start the loop (call on the event loop)."""
        self._stopping = asyncio.Event()
        self._task = asyncio.ensure_future(self._run())

    async def end(self) -> None:
        """End the loop: a pass in progress is cancelled after END_GRACE_S."""
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            _done, late = await asyncio.wait([self._task], timeout=END_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError

    @property
    def _stopped(self) -> bool:
        return self.ctx.stopping or (self._stopping is not None and self._stopping.is_set())

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when stopped."""
        assert self._stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
