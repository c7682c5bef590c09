"""One scrape's text in Prometheus's format: the metrics of a group of processes (from the files each writes
to the group's directory) or of this process alone, and collectors read at scrape time."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def scrape(multiprocess_dir: str, *collectors: Collector, own: CollectorRegistry = REGISTRY) -> bytes:
    """With `multiprocess_dir`, every process's metrics written there (this one's included); else `own`'s."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(own)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)
