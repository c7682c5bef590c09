"""One scrape's text in Prometheus's format: the metrics of a group of processes (from the files each writes
to the group's directory) or of this process alone, and collectors read at scrape time."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from worker.metrics_dir import running

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def scrape(multiprocess_dir: str, *collectors: Collector, own: CollectorRegistry = REGISTRY) -> bytes:
    """With `multiprocess_dir`, every process's metrics written there (this one's included); else `own`'s."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        forget_the_dead(multiprocess_dir)
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(own)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+?_(\d+)\.db")


def forget_the_dead(multiprocess_dir: str) -> None:
    """Drop the live gauges (`campaign_worker_processes`, dramatiq's in-progress jobs) of processes that
    died without stopping cleanly (SIGKILL, the OOM killer): a live gauge counts only processes running."""
    for path in Path(multiprocess_dir).glob("gauge_live*.db"):
        if (match := _LIVE_GAUGE_FILE.fullmatch(path.name)) and not running(int(match[1])):
            with contextlib.suppress(FileNotFoundError):  # another scrape, at once, removed it first
                mark_process_dead(int(match[1]), multiprocess_dir)
