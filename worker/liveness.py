"""A worker group's liveness: each worker process beats (touches a file of its own in the group's
directory) from its event loop, and the group's monitor judges the group alive while its parent lives and
every worker process it was started with is there and beating."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import NamedTuple

import dramatiq
from dramatiq.asyncio import get_event_loop_thread
from dramatiq.middleware import Middleware
from prometheus_client import multiprocess

from worker.metrics import PROCESSES
from worker.metrics_dir import running

BEAT_S = 5.0
# A process whose event loop has not beaten for this long is stuck (every send runs on that loop).
STALE_S = 30.0
_BEAT_PREFIX = "heartbeat_"
_EXPECTED = "processes"  # the file holding how many worker processes the group was started with


class Heartbeat(Middleware):
    """In each worker process of a group: beat every `BEAT_S` from boot, stop beating (and leave the
    group's live gauges) on a clean shutdown."""

    def __init__(self, directory: str) -> None:
        self.path = Path(directory) / f"{_BEAT_PREFIX}{os.getpid()}"
        self._task: asyncio.Task[None] | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        PROCESSES.set(1)
        loop_thread = get_event_loop_thread()
        if loop_thread is not None:
            loop_thread.loop.call_soon_threadsafe(self._start)

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        while True:
            self.path.touch()
            await asyncio.sleep(BEAT_S)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        multiprocess.mark_process_dead(os.getpid(), str(self.path.parent))


def watch_group(broker: dramatiq.Broker, directory: str) -> None:
    """Make a worker process of a group with a metrics port (`worker.group`) beat, and count dramatiq's
    metrics with its Prometheus middleware (off by default since dramatiq 2.0), in the group's directory
    (`dramatiq_prom_db`, set by the group) where ours are; its own exposition server, a fork on port 9191,
    is left out: the group's monitor serves dramatiq's metrics with ours."""
    from dramatiq.middleware.prometheus import Prometheus  # reads the directory as it is imported

    class InTheGroup(Prometheus):
        @property
        def forks(self) -> list:  # type: ignore[type-arg]
            return []

    broker.add_middleware(InTheGroup())
    broker.add_middleware(Heartbeat(directory))


def expect(directory: str, processes: int) -> None:
    """Record how many worker processes the group starts (by its parent, before it starts them)."""
    (Path(directory) / _EXPECTED).write_text(str(processes))


class GroupHealth(NamedTuple):
    trouble: str | None  # why the group is not alive; None when it is
    processes: list[int]  # the worker processes beating


def group_health(directory: str, parent: int, *, now: float | None = None) -> GroupHealth:
    """Whether the group is alive: its parent there, each worker process it was started with there and
    beating."""
    if os.getppid() != parent:
        return GroupHealth(f"the worker group's parent process {parent} is gone", [])
    now = time.time() if now is None else now
    beating: list[int] = []
    for beat in Path(directory).glob(f"{_BEAT_PREFIX}*"):
        pid = int(beat.name.removeprefix(_BEAT_PREFIX))
        try:
            silent_s = now - beat.stat().st_mtime
        except FileNotFoundError:  # stopped cleanly since the listing
            continue
        if not running(pid):
            return GroupHealth(f"worker process {pid} is gone", beating)
        if silent_s > STALE_S:
            return GroupHealth(f"worker process {pid} has not beaten for {silent_s:.0f} s", beating)
        beating.append(pid)
    expected_path = Path(directory) / _EXPECTED
    expected = int(expected_path.read_text()) if expected_path.exists() else 0
    if len(beating) < expected:
        return GroupHealth(f"{len(beating)} of the group's {expected} worker processes are up", beating)
    return GroupHealth(None, sorted(beating))
