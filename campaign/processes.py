"""`campaign worker|simulate|demo`: run the long-lived processes: workers, the gateway simulator, the demo."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any

from campaign.arguments import positive, rate
from schemas.errors import SettingsError
from schemas.settings import Settings

WORKER_SHUTDOWN_TIMEOUT_MS = 60_000
# An idle queue is polled at least this often (dramatiq backs off to 1 s by default): an OTP, or a
# campaign published to idle workers, waits at most this long to be picked up.
IDLE_POLL_MS = 100


def add_parsers(commands: Any) -> None:
    worker = commands.add_parser("worker", help="run dramatiq workers that send queued campaigns")
    worker.add_argument("--processes", type=positive, default=os.cpu_count() or 1)
    worker.add_argument("--threads", type=positive, default=8)
    worker.add_argument(
        "--in-flight",
        type=positive,
        help="bulk requests to Kaleyra at once per process (CAMPAIGN_MAX_IN_FLIGHT; default: as many "
        "as threads); with a few more threads than this, jobs claim, log and settle while others' "
        "requests are out",
    )
    worker.add_argument(
        "--metrics-port",
        type=_port,
        metavar="N",
        help="serve /metrics (all of this worker's processes), /healthz and /readyz on port N of every "
        "interface (CAMPAIGN_METRICS_PORT; default: none)",
    )
    worker.set_defaults(run=_worker)

    simulate = commands.add_parser(
        "simulate", help="run the Kaleyra gateway simulator (demos, staging, load tests)"
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8088)
    simulate.add_argument("--e403-rate", type=rate, default=0.0, help="share of requests answered with E403")
    simulate.add_argument("--latency-ms", type=float, default=0.0, help="delay before every answer")
    simulate.add_argument(
        "--slow-reply-rate",
        type=rate,
        default=0.0,
        metavar="R",
        help="share of accepted requests whose answer is held back (recorded as sent, answered late)",
    )
    simulate.add_argument(
        "--slow-reply-ms",
        type=float,
        default=0.0,
        metavar="N",
        help="how long a slow reply is held",
    )
    simulate.add_argument("--seed", type=int, help="make the injected faults repeatable")
    simulate.set_defaults(run=_simulate)

    demo = commands.add_parser(
        "demo", help="everything in one process: fakeredis, the simulator and a worker"
    )
    demo.add_argument("--recipients", type=positive, default=10_000, help="how many (default 10000)")
    demo.add_argument(
        "--e403-rate", type=rate, default=0.2, help="share of requests answered E403 (default 0.2)"
    )
    demo.add_argument("--latency-ms", type=float, default=5.0, help="the simulator's delay (default 5)")
    demo.add_argument("--threads", type=positive, default=8, help="the worker's threads (default 8)")
    demo.add_argument(
        "--events", metavar="PATH", help="where the worker's JSON log goes (default: a temp file)"
    )
    demo.set_defaults(run=_demo)


def _port(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a port number") from None
    if not 0 <= value <= 65_535:
        raise argparse.ArgumentTypeError(f"{raw!r} must be a port from 0 (none) to 65535")
    return value


def refuse_taken(host: str, port: int, option: str) -> None:
    """Refuse, in one line, an address another process listens on now (one sharing it by SO_REUSEPORT
    too: a second `campaign serve` would silently take half of the first's requests) or that is none of
    this machine's, rather than start a server that cannot listen or is not the only one there."""
    try:
        found = socket.getaddrinfo(host or "0.0.0.0", port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        addresses = {info[4][:2]: info[0] for info in found}
    except (socket.gaierror, UnicodeError) as e:
        raise SettingsError(f"--host {host!r} cannot be used: {getattr(e, 'strerror', None) or e}") from None
    for address, family in addresses.items():
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
                if family == socket.AF_INET6:  # as asyncio binds `::`: IPv6 alone, not IPv4's port too
                    probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                probe.bind(address)
        except OSError as e:
            raise SettingsError(f"{option} cannot be used on {address[0]}: {e.strerror or e}") from None


def _worker(args: argparse.Namespace) -> int:
    from redis_model.keys import LANES

    settings = Settings.from_environ()
    settings.require_credentials()  # refuse now, not once per chunk
    metrics_port = settings.metrics_port if args.metrics_port is None else args.metrics_port
    if metrics_port:
        refuse_taken("", metrics_port, f"--metrics-port {metrics_port}")
    # With a metrics port, dramatiq runs inside `worker.group`, which gives the group its metrics directory.
    runner = ["worker.group"] if metrics_port else ["dramatiq"]
    command = [
        sys.executable,
        "-m",
        *runner,
        "worker.entrypoint",
        "--processes",
        str(args.processes),
        "--threads",
        str(args.threads),
        "--queues",
        *(lane.queue for lane in LANES),
        # In-flight chunks finish, and their jobs go back to the queue, within this bound.
        "--worker-shutdown-timeout",
        str(WORKER_SHUTDOWN_TIMEOUT_MS),
    ]
    if args.in_flight is not None:
        os.environ["CAMPAIGN_MAX_IN_FLIGHT"] = str(args.in_flight)
    os.environ["CAMPAIGN_METRICS_PORT"] = str(metrics_port)
    os.environ.setdefault("dramatiq_worker_timeout", str(IDLE_POLL_MS))
    sys.stdout.flush()
    os.execv(sys.executable, command)


def _simulate(args: argparse.Namespace) -> int:
    from ops.simulator import SimulatorConfig, serve

    settings = Settings.from_environ()
    config = SimulatorConfig(
        api_key=settings.api_key,
        e403_rate=args.e403_rate,
        latency_ms=args.latency_ms,
        slow_reply_rate=args.slow_reply_rate,
        slow_reply_ms=args.slow_reply_ms,
        seed=args.seed,
    )
    refuse_taken(args.host, args.port, f"--port {args.port}")
    serve(config, args.host, args.port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from campaign.demo import run_demo

    return run_demo(
        recipients=args.recipients,
        e403_rate=args.e403_rate,
        latency_ms=args.latency_ms,
        threads=args.threads,
        events_path=args.events,
    )
