"""`campaign demo`: the whole path in one process, with no services to install.

fakeredis stands in for Redis, the gateway simulator for Kaleyra (injecting E403s),
and a dramatiq worker runs in this process's threads. A progress bar follows the
campaign; a summary closes it.
"""

from __future__ import annotations

import random
import secrets
import tempfile
import time
from collections.abc import Iterator

import dramatiq
import fakeredis
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from campaign.plural import plural
from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from schemas.campaign import FINISHED_STATES, CampaignState
from schemas.settings import Settings
from worker.broker import build_broker, register_actors
from worker.context import WorkerContext
from worker.logging import configure_logging

_FORMATS = (
    lambda n: f"+91{n}",
    lambda n: f"0091{n}",
    lambda n: f"91{n}",
    lambda n: f"0{n}",
    lambda n: n,
    lambda n: f"+91 {n[:5]} {n[5:]}",
    lambda n: f"({n[:3]}) {n[3:6]}-{n[6:]}",
)


def run_demo(
    *, recipients: int, e403_rate: float, latency_ms: float, threads: int, events_path: str | None
) -> int:
    console = Console(stderr=True)
    if not events_path:
        with tempfile.NamedTemporaryFile(prefix="campaign-demo-", suffix=".jsonl", delete=False) as made:
            events_path = made.name
    events = open(events_path, "wb")  # noqa: SIM115 - closed after the summary
    configure_logging(events)
    config = SimulatorConfig(
        api_key=secrets.token_hex(16), e403_rate=e403_rate, latency_ms=latency_ms, seed=7
    )
    server = fakeredis.FakeServer()
    client = fakeredis.FakeRedis(server=server)
    with start_in_thread(config) as simulator:
        settings = Settings(
            api_key=config.api_key,
            sid="HXDEMO00000IN",
            base_url=simulator.base_url,
            retry_backoff_ms=20,
            retry_backoff_max_ms=500,
            job_min_backoff_ms=200,
            max_invalid=1.0,  # a typo in every 500 rows from the first: a short list is mostly typos
        )
        broker = build_broker(settings, client)
        register_actors(broker, WorkerContext(settings, lambda: fakeredis.aioredis.FakeRedis(server=server)))
        worker = dramatiq.Worker(broker, worker_threads=threads)
        worker.start()
        try:
            spec = build_spec(
                settings=settings,
                sender="KLRHXA",
                type="MKT",
                prefix="+91",
                body="Hello from the campaign demo! Reply STOP to opt out.",
                name="demo",
            )
            started = time.monotonic()
            result = publish_campaign(
                spec, _demo_rows(recipients), client=client, broker=broker, settings=settings
            )
            console.print(
                f"published [bold]{result.campaign_id}[/]: {plural(result.total, 'recipient')} in "
                f"{plural(result.jobs, 'job')} ({result.invalid} invalid, "
                f"{plural(result.duplicates, 'duplicate row')} skipped)"
            )
            status = _follow(console, client, result.campaign_id, result.total)
            elapsed = time.monotonic() - started
        finally:
            worker.stop()
        record = simulator.record
    _summary(console, status, elapsed, record.e403_injected, len(record.messages), events.name)
    events.close()
    return 0 if status.state == CampaignState.COMPLETED and status.pending == 0 else 1


def _demo_rows(count: int) -> Iterator[tuple[int, str]]:
    """`count` distinct Indian mobiles in the formats users send, plus a few duplicates and invalid rows."""
    rng = random.Random(42)
    line = 1
    for i in range(count):
        national = f"9{i:09d}"
        line += 1
        yield line, rng.choice(_FORMATS)(national)
        if i % 500 == 0:  # a repeat in another format, and a typo
            line += 1
            yield line, f"+91 {national}"
            line += 1
            yield line, f"9{i:05d}x"


def _follow(console: Console, client: fakeredis.FakeRedis, campaign_id: str, total: int):  # type: ignore[no-untyped-def]
    columns = (
        TextColumn("[bold]sending"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("send", total=total, detail="")
        while True:
            status = campaign_status(client, campaign_id)
            done = status.total - status.pending
            detail = f"failed {status.failed}  retries {status.retried}"
            progress.update(task, completed=done, detail=detail)
            if status.state in FINISHED_STATES:
                return status
            time.sleep(0.1)


def _summary(console: Console, status, elapsed: float, e403s: int, accepted: int, events: str) -> None:  # type: ignore[no-untyped-def]
    table = Table(title=f"campaign {status.campaign_id}: {status.state}", show_header=False)
    rows = (
        ("recipients", status.total),
        ("submitted", status.submitted),
        ("failed", status.failed),
        ("unknown", status.unknown),
        ("retried requests (E403 injected)", f"{status.retried} ({e403s})"),
        ("skipped: invalid / duplicates", f"{status.invalid} / {status.duplicates}"),
        ("messages the gateway accepted", accepted),
        ("elapsed", f"{elapsed:.2f} s"),
        ("messages per second", f"{status.submitted / elapsed:,.0f}" if elapsed else "-"),
    )
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    console.print(f"one sms.submitted event per message_id: {events}")
