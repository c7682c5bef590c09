"""Run the simulator on a real TCP port: in a background thread (tests) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from concurrent.futures import Future
from types import TracebackType

from aiohttp import web

from ops.simulator.app import FAULTS_KEY, RECORD_KEY, REPORTS_KEY, create_app
from ops.simulator.config import SimulatorConfig
from ops.simulator.delivery import DeliveryReports, ReportsConfig
from ops.simulator.faults import Faults, FaultsUpdate
from ops.simulator.record import SimulatorRecord

__all__ = ["RunningSimulator", "SimulatorConfig", "serve", "start_in_thread"]

STARTUP_TIMEOUT_S = 10.0
# How long in-flight requests (a long injected latency or slow reply, say) may delay a stop.
SHUTDOWN_GRACE_S = 2.0


class RunningSimulator:
    """A simulator serving from its own thread and event loop; `stop()` or use it as a context manager."""

    def __init__(
        self,
        base_url: str,
        record: SimulatorRecord,
        faults: Faults,
        thread: threading.Thread,
        loop: asyncio.AbstractEventLoop,
        stopping: asyncio.Event,
        reports: DeliveryReports | None = None,
    ) -> None:
        self.base_url = base_url
        self.record = record
        self._faults = faults
        self._reports = reports
        self._thread = thread
        self._loop = loop
        self._stopping = stopping

    def set_faults(self, **change: float | bool) -> None:
        """Change faults from the caller's thread, as `PUT /_simulator/faults` would; a bad value raises."""
        update = FaultsUpdate(**change)  # type: ignore[arg-type]

        async def apply() -> None:
            await self._faults.apply(update)

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(timeout=STARTUP_TIMEOUT_S)

    def set_reports(self, config: ReportsConfig | None) -> None:
        """Delivery reports for messages accepted from now on, as `PUT /_simulator/reports/config`."""
        if self._reports is None:
            raise RuntimeError("this simulator was started without its delivery reports")
        reports = self._reports

        async def apply() -> None:
            reports.configure(config)

        asyncio.run_coroutine_threadsafe(apply(), self._loop).result(timeout=STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        """Closes the listening socket and every connection, then the loop. Safe to call twice."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join()

    def __enter__(self) -> RunningSimulator:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_in_thread(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 0) -> RunningSimulator:
    """Starts serving and returns once the port is bound; port 0 picks a free one.

    Binding errors (port in use) are raised here, in the caller's thread.
    """
    app = create_app(config)
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]] = Future()
    thread = threading.Thread(
        target=asyncio.run,
        args=(_serve_until_stopped(app, host, port, started),),
        name=f"kaleyra-simulator-{host}:{port}",
        daemon=True,  # a forgotten stop() must not hang the interpreter's exit
    )
    thread.start()
    try:
        loop, stopping, bound_port = started.result(timeout=STARTUP_TIMEOUT_S)
    except BaseException:
        thread.join(timeout=STARTUP_TIMEOUT_S)
        raise
    return RunningSimulator(
        _url(host, bound_port), app[RECORD_KEY], app[FAULTS_KEY], thread, loop, stopping, app[REPORTS_KEY]
    )


def serve(config: SimulatorConfig, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serves in the foreground until SIGINT or SIGTERM (`campaign simulate`)."""
    asyncio.run(_serve_until_signalled(config, host, port))


async def _serve_until_stopped(
    app: web.Application,
    host: str,
    port: int,
    started: Future[tuple[asyncio.AbstractEventLoop, asyncio.Event, int]],
) -> None:
    try:
        runner, bound_port = await _start(app, host, port)
    except BaseException as error:
        started.set_exception(error)
        return
    stopping = asyncio.Event()
    started.set_result((asyncio.get_running_loop(), stopping, bound_port))
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


async def _serve_until_signalled(config: SimulatorConfig, host: str, port: int) -> None:
    runner, bound_port = await _start(create_app(config), host, port)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    sid = config.sid or "any"
    slow = (
        f", slow_reply_rate={config.slow_reply_rate}, slow_reply_ms={config.slow_reply_ms}"
        if config.slow_reply_rate
        else ""
    )
    reports = f", reports to {config.reports.url}" if config.reports and config.reports.url else ""
    print(
        f"simulator listening on {_url(host, bound_port)} "
        f"(sid={sid}, e403_rate={config.e403_rate}, latency_ms={config.latency_ms}{slow}{reports})",
        flush=True,
    )
    try:
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await runner.cleanup()


async def _start(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    # No access log: at tens of thousands of requests a second it would cost more than the handler.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_S)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_port = runner.addresses[0][1]
    app[FAULTS_KEY].go_down = _Outage(runner, host, bound_port, app[FAULTS_KEY]).begin
    return runner, bound_port


class _Outage:
    """The gateway down on request: its port refuses connections for a while (a request on a
    connection kept alive from before is answered 503 and the connection closed; requests in
    progress are answered as usual), then it serves again."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, faults: Faults) -> None:
        self._runner = runner
        self._host = host
        self._port = port
        self._faults = faults
        self._task: asyncio.Task[None] | None = None

    async def begin(self, ms: float) -> None:
        """Returns once the port refuses connections; an outage under way is lengthened."""
        self._faults.down_until = time.monotonic() + ms / 1000
        if self._task is not None and not self._task.done():
            return
        for site in list(self._runner.sites):
            await site.stop()
        self._task = asyncio.get_running_loop().create_task(self._serve_again())

    async def _serve_again(self) -> None:
        while (left := (self._faults.down_until or 0) - time.monotonic()) > 0:
            await asyncio.sleep(left)
        self._faults.down_until = None
        await web.TCPSite(self._runner, self._host, self._port, reuse_address=True).start()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
