"""`python -m ops.bench.send_message`: the Python API's `send_message` rate from one process, the Redis
commands it costs per message (INFO commandstats) and the stream's bytes per queued message.

Runs on a redis-server of its own (`ops/redis.conf`: AOF everysec, as deployed) unless given `--url`;
on a Redis others use, commandstats counts their commands too. Four ways: `Campaigns.send_message`
without and with an idempotency key, then `AsyncCampaigns.send_message` with `--in-flight` calls at
a time, without and with a key. The machine is shared: compare the ways, not the seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import redis

from ops.services import RedisServer
from producer import AsyncCampaigns, Campaigns
from redis_model import keys
from schemas.settings import Settings

MESSAGE = {"sender": "KLRHXA", "type": "TXN", "body": "Your order 42 shipped", "reference": "order-42"}


def _recipient(i: int) -> str:
    return f"+91981{i % 10_000_000:07d}"


def _sync_run(campaigns: Campaigns, count: int, keyed: bool) -> None:
    for i in range(count):
        campaigns.send_message(
            to=_recipient(i), idempotency_key=f"s{keyed}-{i}" if keyed else None, **MESSAGE
        )


def _async_run(url: str, count: int, keyed: bool, in_flight: int) -> None:
    async def run() -> None:
        async with AsyncCampaigns.from_url(url, Settings(redis_url=url)) as campaigns:

            async def sender(start: int) -> None:
                for i in range(start, count, in_flight):
                    key = f"a{keyed}-{i}" if keyed else None
                    await campaigns.send_message(to=_recipient(i), idempotency_key=key, **MESSAGE)

            await asyncio.gather(*(sender(start) for start in range(in_flight)))

    asyncio.run(run())


def _measure(client: redis.Redis, count: int, run: Callable[[], None]) -> tuple[float, float]:
    """Messages a second and Redis commands a message of `run()`."""
    client.config_resetstat()
    began = time.perf_counter()
    run()
    elapsed = time.perf_counter() - began
    stats = client.info("commandstats")
    calls = sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_config|resetstat", "cmdstat_info"))
    return count / elapsed, calls / count


def bench(url: str, count: int, in_flight: int) -> None:
    client = redis.Redis.from_url(url)
    campaigns = Campaigns.from_url(url, Settings(redis_url=url))
    campaigns.send_message(to=_recipient(0), idempotency_key="warm-up", **MESSAGE)  # loads the script
    ways: list[tuple[str, Callable[[], None]]] = [
        ("Campaigns, no key", lambda: _sync_run(campaigns, count, False)),
        ("Campaigns, idempotency key", lambda: _sync_run(campaigns, count, True)),
        (f"AsyncCampaigns x{in_flight}, no key", lambda: _async_run(url, count, False, in_flight)),
        (f"AsyncCampaigns x{in_flight}, key", lambda: _async_run(url, count, True, in_flight)),
    ]
    print(f"{'way':<32} {'messages/s':>11} {'commands/message':>17}")
    for name, run in ways:
        rate, commands = _measure(client, count, run)
        print(f"{name:<32} {rate:>11,.0f} {commands:>17.2f}")
    stream = keys.message_stream(keys.TXN_LANE)
    entries = client.xlen(stream)
    used = client.memory_usage(stream, samples=0) or 0
    print(f"stream {stream}: {entries:,} entries, {used / entries:.0f} bytes per queued message")
    campaigns.close()
    client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ops.bench.send_message", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--url", help="a Redis to use (default: a redis-server of its own)")
    parser.add_argument("--count", type=int, default=20_000, help="messages per way")
    parser.add_argument("--in-flight", type=int, default=64, help="concurrent async calls")
    args = parser.parse_args(argv)
    if args.url:
        bench(args.url, args.count, args.in_flight)
        return 0
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        try:
            bench(server.url, args.count, args.in_flight)
        finally:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
