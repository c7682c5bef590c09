"""The gauges read from Redis at each scrape (queue depth, campaigns by state, delivery, the account's hold),
shared by the worker group's monitor and `campaign serve`: each exporter shows the same Redis-wide figures."""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from redis_model import census
from redis_model.delivery import DELAY_BUCKETS_S
from schemas.campaign import CampaignState

QUEUE_MESSAGES = "campaign_queue_messages"  # a contract: KEDA scales workers on it (docs/metrics.md)


class RedisGauges(Collector):
    """Reads Redis when collected (a scrape): one round trip for the queues and the account; the campaigns'
    census as one exporter last walked it, at most `census_s` ago (0: walked at every scrape). With Redis
    out of reach, only `campaign_redis_up 0`."""

    def __init__(self, client: redis.Redis, sid: str, census_s: float = 0.0) -> None:
        self.client, self.sid, self.census_s = client, sid, census_s

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        up = GaugeMetricFamily("campaign_redis_up", "1 if this scrape could read Redis, else 0")
        try:
            depths = census.queue_depths(self.client)
            held = census.held_code(self.client, self.sid)
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield _queues(depths)
        try:  # a walk of every campaign: one that fails must not take the queue gauge (KEDA's) with it
            counted = census.shared_campaigns(self.client, self.census_s)
        except redis.RedisError:
            counted = None
        if counted is not None:
            yield from _campaigns(counted.census)
            age = GaugeMetricFamily(
                "campaign_census_age_seconds",
                "How long ago the campaigns' figures of this scrape (campaigns by state, delivery) were read "
                "from Redis: one exporter reads them for all, at most every CAMPAIGN_METRICS_CENSUS",
            )
            age.add_metric([], counted.age_s)
            yield age
        account = GaugeMetricFamily(
            "campaign_account_held",
            "1 while the account is held (its key refused, the gateway out of reach): nothing is sent",
            labels=["account"],
        )
        account.add_metric([self.sid], 0 if held is None else 1)
        yield account


def _queues(depths: list[census.QueueDepth]) -> GaugeMetricFamily:
    queues = GaugeMetricFamily(
        QUEUE_MESSAGES,
        "Jobs in each lane's dramatiq queue and single messages in each lane's stream, by state: ready "
        "(waiting for a worker), delayed (a back-off or a job that comes back later), in_flight (taken by "
        "a worker, not finished), dead (dead-lettered)",
        labels=["queue", "state"],
    )
    for depth in depths:
        queues.add_metric([depth.queue, depth.state], depth.messages)
    return queues


def _campaigns(counted: census.CampaignCensus) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
    by_state = GaugeMetricFamily("campaign_campaigns", "Campaigns in Redis by state", labels=["state"])
    for state in CampaignState:
        by_state.add_metric([state.value], counted.by_state[state.value])
    yield by_state
    delivery = GaugeMetricFamily(
        "campaign_delivery_messages",
        "Messages of the campaigns in Redis with a final delivery report, by its status",
        labels=["status"],
    )
    for status in ("delivered", "undelivered", "failed"):
        delivery.add_metric([status], counted.delivered[status])
    yield delivery
    cumulative, buckets = 0, []
    for bound in [*map(str, DELAY_BUCKETS_S), "inf"]:
        cumulative += counted.delivery_times[bound]
        buckets.append(("+Inf" if bound == "inf" else f"{float(bound)}", float(cumulative)))
    # Buckets only (Redis keeps no sum); a gauge at heart: it falls as finished campaigns expire.
    yield HistogramMetricFamily(
        "campaign_delivery_seconds",
        "Delivered messages of the campaigns in Redis by the time from their submission to the report",
        buckets=buckets,
    )
