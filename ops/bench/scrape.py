"""`python -m ops.bench.scrape`: what a scrape of the Redis gauges costs Redis with many campaigns kept.

Fills a `redis-server` of its own with finished campaigns, then scrapes the gauges as
every exporter does: walking the campaigns at each scrape (`CAMPAIGN_METRICS_CENSUS=0`) and reading
the census one exporter walked for all (the default). Redis commands are counted by the server.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import redis

from ops.services import RedisServer
from redis_model import keys
from worker.redis_metrics import RedisGauges

SCRAPES = 10


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench.scrape", description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=10_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        client = redis.Redis.from_url(server.url)
        try:
            _fill(client, args.campaigns)
            for census_s, name in ((0.0, "walked at each scrape"), (30.0, "the shared census")):
                commands, seconds = _scrape(RedisGauges(client, "HXBENCH", census_s))
                print(f"{args.campaigns:,} campaigns, {name}: {commands:,.0f} Redis commands, "
                      f"{seconds * 1000:.1f} ms a scrape")  # fmt: skip
        finally:
            client.close()
            server.kill()
    return 0


def _fill(client: redis.Redis, campaigns: int) -> None:
    with client.pipeline(transaction=False) as pipe:
        for n in range(campaigns):
            pipe.zadd(keys.CAMPAIGNS_BY_CREATION, {f"c{n}": n})
            pipe.hset(keys.campaign(f"c{n}"), mapping={keys.STATE: "completed", keys.DELIVERED: 1})
        pipe.execute()


def _scrape(gauges: RedisGauges) -> tuple[float, float]:
    """Redis commands and seconds a scrape, after a first one (the shared census's walk, stored)."""
    list(gauges.collect())
    before, started = _commands(gauges.client), time.perf_counter()
    for _ in range(SCRAPES):
        list(gauges.collect())
    seconds = (time.perf_counter() - started) / SCRAPES
    return (_commands(gauges.client) - before - 1) / SCRAPES, seconds  # less the INFO that counted


def _commands(client: redis.Redis) -> int:
    return sum(int(stats["calls"]) for stats in client.info("commandstats").values())


if __name__ == "__main__":
    raise SystemExit(main())
