"""`python -m ops.bench.publisher CSV`: publish a benchmark campaign from a CSV, as `campaign send` does,
and print one JSON line: the campaign id, rows, seconds spent and this process's peak RSS.

A process of its own, so that its peak RSS is the producer's alone: VmHWM, since getrusage's
ru_maxrss survives exec and would report the forking benchmark's own peak.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import msgspec

from ops.services import peak_rss_mb
from producer.job_queue import job_broker
from producer.publish import publish_file
from producer.spec import build_spec
from redis_model.connection import sync_client
from schemas.campaign import CampaignSpec
from schemas.settings import Settings

BODY = "Our winter sale starts today: 20% off everything in store and online. Reply STOP to opt out."


def bench_spec(settings: Settings) -> CampaignSpec:
    """The benchmark's marketing campaign: one shared body, national numbers under +91."""
    return build_spec(settings=settings, sender="KLRHXA", type="MKT", body=BODY, prefix="+91", name="bench")


def write_recipients(path: Path, total: int) -> Path:
    """The benchmark's CSV: `total` distinct national numbers (the campaign's prefix is +91) and a name."""
    with open(path, "w") as out:
        out.write("to,name\n")
        out.writelines(f"9{i:09d},r{i}\n" for i in range(total))
    return path


def main(path: str) -> None:
    settings = Settings.from_environ()
    spec = bench_spec(settings)
    client = sync_client(settings)
    started_at = time.time()
    started = time.perf_counter()
    result = publish_file(spec, path, client=client, broker=job_broker(client), settings=settings)
    seconds = time.perf_counter() - started
    report = {"campaign_id": result.campaign_id, "rows": result.total, "seconds": seconds,
              "started_at": started_at, "peak_rss_mb": peak_rss_mb(os.getpid())}  # fmt: skip
    print(msgspec.json.encode(report).decode())


if __name__ == "__main__":
    main(sys.argv[1])
