"""`campaign serve`: the HTTP service in N processes sharing one port (SO_REUSEPORT), each ending its
requests in flight on SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import signal
import sys
from typing import Any

from aiohttp import web

from campaign.arguments import positive
from campaign.plural import plural
from campaign.processes import refuse_taken
from campaign.service.config import MAX_LINE_BYTES, ServiceConfig
from campaign.service.dlr_config import DlrConfig
from campaign.service.pages.session import random_secret, secret_from_environ
from schemas.settings import Settings
from worker.metrics_dir import metrics_directory


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="serve the HTTP API: single messages and campaigns (docs/http-api.md)"
    )
    defaults = ServiceConfig()
    serve.add_argument("--host", default=defaults.host)
    serve.add_argument("--port", type=int, default=defaults.port)
    serve.add_argument(
        "--processes",
        type=positive,
        default=defaults.processes,
        help="processes sharing the port (default: one per core); each keeps its own API-key rates",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=positive,
        default=defaults.max_upload_bytes >> 20,
        help="the largest recipients file POST /v1/campaigns takes",
    )
    serve.set_defaults(run=_serve)


def _serve(args: argparse.Namespace) -> int:
    Settings.from_environ()  # refuse a bad environment here, once, not in each process
    refuse_taken(args.host, args.port, f"--port {args.port}")
    config = ServiceConfig(
        host=args.host,
        port=args.port,
        processes=args.processes,
        max_upload_bytes=args.max_upload_mb << 20,
        dlr=DlrConfig.from_environ(),  # read once, here; each process is given it
        ui_secret=_ui_secret(),
    )
    where = f"http://{config.host}:{config.port}"
    print(f"campaign serve: {where} ({plural(config.processes, 'process', 'processes')})", file=sys.stderr)
    # Before prometheus_client is imported: /metrics, answered by any process, counts all of them.
    with metrics_directory("campaign-serve-metrics-"):
        if config.processes == 1:
            serve_one(config)
            return 0
        return _serve_many(config)


def _ui_secret() -> bytes:
    """CAMPAIGN_UI_SECRET for the status pages' sessions, else a random one drawn here (and said so),
    shared by every process of this service."""
    secret = secret_from_environ()
    if secret is None:
        print("campaign serve: CAMPAIGN_UI_SECRET is not set: status-page sign-ins last until this service "
              "restarts (a random secret signs them)", file=sys.stderr)  # fmt: skip
        return random_secret()
    return secret


def serve_one(config: ServiceConfig) -> None:
    """One process's server, until SIGINT or SIGTERM; then it stops accepting and its requests in
    flight end (within `shutdown_timeout_s`) before it exits."""
    import uvloop

    uvloop.run(_serve_until_signalled(config))


async def _serve_until_signalled(config: ServiceConfig) -> None:
    from campaign.service.app import make_app

    runner = web.AppRunner(
        make_app(Settings.from_environ(), config),
        access_log=None,
        shutdown_timeout=config.shutdown_timeout_s,
        max_line_size=MAX_LINE_BYTES,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port, reuse_port=True).start()
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        await stopping.wait()
    finally:
        await runner.cleanup()


def _serve_many(config: ServiceConfig) -> int:
    """Start the processes; SIGTERM or SIGINT here is passed on to each once; one ending ends them all."""
    context = multiprocessing.get_context("spawn")
    children = [context.Process(target=serve_one, args=(config,)) for _ in range(config.processes)]
    for child in children:
        child.start()
    stopped = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            for child in children:
                if child.is_alive():
                    child.terminate()  # SIGTERM: the child ends its requests in flight

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    multiprocessing.connection.wait([child.sentinel for child in children])
    stopped_by_signal = stopped
    stop(signal.SIGTERM, None)
    for child in children:
        child.join()
    # A child told to stop before it could handle SIGTERM (still starting) had no request in flight.
    clean = (0, -signal.SIGTERM) if stopped_by_signal else (0,)
    return int(any(child.exitcode not in clean for child in children))
