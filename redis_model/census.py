"""What Redis holds now, counted for the metrics: queued jobs and single messages by state, campaigns by
state, their delivery reports and times to delivery, and whether the account is held."""

from __future__ import annotations

import math
import secrets
from collections import Counter
from typing import Any, NamedTuple

import msgspec
import redis

from redis_model import keys
from redis_model.campaign_index import oldest_campaign_ids
from redis_model.delivery import delay_bucket
from redis_model.scripts import source

READY, DELAYED, IN_FLIGHT, DEAD = "ready", "delayed", "in_flight", "dead"
_PAGE = 500  # campaigns read per round trip
# A census past its freshness is still shown while another exporter walks: kept this long at least.
_CENSUS_KEPT_S = 600
_WALK_LEASE_S = 120  # an exporter that dies walking frees the walk after this
# A campaign's delivery counters, and the names they are shown by.
_DELIVERY_FIELDS = {keys.DELIVERED: "delivered", keys.UNDELIVERED: "undelivered", keys.DLR_FAILED: "failed"}


class QueueDepth(NamedTuple):
    queue: str  # a dramatiq queue's name, or a single-message lane's stream
    state: str  # READY, DELAYED, IN_FLIGHT or DEAD
    messages: int


class CampaignCensus(NamedTuple):
    by_state: Counter[str]
    delivered: Counter[str]  # final delivery reports by status: delivered, undelivered, failed
    delivery_times: Counter[str]  # delivered messages by their bucket's upper bound in seconds ("inf")


class SharedCensus(NamedTuple):
    census: CampaignCensus
    age_s: float  # since its walk


class _StoredCensus(msgspec.Struct, array_like=True):
    kept_s: int  # the key's expiry when written: what is left of it tells the census's age
    by_state: dict[str, int]
    delivered: dict[str, int]
    delivery_times: dict[str, int]


_stored = msgspec.msgpack.Decoder(_StoredCensus)


def queue_depths(client: redis.Redis) -> list[QueueDepth]:
    """Each lane's dramatiq queue (waiting, delayed, fetched by a worker and not acknowledged, dead-
    lettered) and single-message stream (waiting for a worker, read and not settled), in one round trip.

    A dramatiq queue's messages hash holds every message not acknowledged, its list only those waiting:
    the difference is what workers hold, read without walking every worker's ack set."""
    with client.pipeline(transaction=True) as pipe:
        for lane in keys.LANES:
            pipe.llen(keys.dramatiq_ready(lane.queue))
            pipe.hlen(keys.dramatiq_messages(lane.queue))
            pipe.hlen(keys.dramatiq_delayed(lane.queue))
            pipe.zcard(keys.dramatiq_dead(lane.queue))
        for lane in keys.LANES:
            pipe.xlen(keys.message_stream(lane))
            pipe.xpending(keys.message_stream(lane), keys.MESSAGE_GROUP)
        replies: list[Any] = pipe.execute(raise_on_error=False)
    depths = []
    for index, lane in enumerate(keys.LANES):
        ready, unacknowledged, delayed, dead = replies[4 * index : 4 * index + 4]
        depths += [
            QueueDepth(lane.queue, READY, ready),
            QueueDepth(lane.queue, DELAYED, delayed),
            QueueDepth(lane.queue, IN_FLIGHT, max(0, unacknowledged - ready)),
            QueueDepth(lane.queue, DEAD, dead),
        ]
    streams = replies[4 * len(keys.LANES) :]
    for index, lane in enumerate(keys.LANES):
        length, pending = streams[2 * index], streams[2 * index + 1]
        in_flight = 0 if isinstance(pending, Exception) else int(pending["pending"])  # no group yet: none
        depths += [
            QueueDepth(keys.message_stream(lane), READY, max(0, length - in_flight)),
            QueueDepth(keys.message_stream(lane), IN_FLIGHT, in_flight),
        ]
    return depths


def campaigns(client: redis.Redis) -> CampaignCensus:
    """Every campaign in the index by state, with its delivery counts: a page of campaigns a round trip
    (two reads a campaign)."""
    census = CampaignCensus(Counter(), Counter(), Counter())
    start = 0
    while page := oldest_campaign_ids(client, start, _PAGE):
        with client.pipeline(transaction=False) as pipe:
            for campaign_id in page:
                pipe.hmget(keys.campaign(campaign_id), keys.STATE, *_DELIVERY_FIELDS)
                pipe.hgetall(keys.campaign_delivery_times(campaign_id))
            replies: list[Any] = pipe.execute()
        for fields, times in zip(replies[::2], replies[1::2], strict=True):
            state, *counts = fields
            if state is None:  # expired since it was listed
                continue
            census.by_state[state.decode()] += 1
            for name, count in zip(_DELIVERY_FIELDS.values(), counts, strict=True):
                census.delivered[name] += int(count or 0)
            for bucket, count in times.items():
                census.delivery_times[delay_bucket(int(bucket))] += int(count)
        start += _PAGE
    return census


def shared_campaigns(client: redis.Redis, fresh_s: float) -> SharedCensus | None:
    """The campaigns' census, walked at most every `fresh_s` (0: at every call) by one exporter for all.

    A walk reads every campaign: each worker group's and each `campaign serve`'s scrape walking them
    would cost Redis a walk per exporter per scrape interval. The first exporter to find the stored
    census stale walks, under a lease, and stores it; the others show the last one meanwhile (None when
    there is none yet)."""
    if fresh_s <= 0:
        return SharedCensus(campaigns(client), 0.0)
    last = _stored_census(client)
    if last is not None and last.age_s < fresh_s:
        return last
    lease = secrets.token_hex(8)
    if not client.set(keys.CAMPAIGN_CENSUS_WALK, lease, nx=True, ex=_WALK_LEASE_S):
        return last
    try:
        # Another exporter may have stored one between the read and the lease: no second walk then.
        if (last := _stored_census(client)) is not None and last.age_s < fresh_s:
            return last
        walked = campaigns(client)
        kept_s = max(_CENSUS_KEPT_S, math.ceil(2 * fresh_s))
        stored = _StoredCensus(kept_s, *map(dict, walked))
        client.set(keys.CAMPAIGN_CENSUS, msgspec.msgpack.encode(stored), ex=kept_s)
    finally:  # only our own lease: a walk that outlived it must not end another exporter's
        client.register_script(source("release_lock"))(keys=[keys.CAMPAIGN_CENSUS_WALK], args=[lease])
    return SharedCensus(walked, 0.0)


def _stored_census(client: redis.Redis) -> SharedCensus | None:
    with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.CAMPAIGN_CENSUS)
        pipe.pttl(keys.CAMPAIGN_CENSUS)
        raw, ttl_ms = pipe.execute()
    return None if raw is None else _decoded(raw, ttl_ms)


def _decoded(raw: bytes, ttl_ms: int) -> SharedCensus | None:
    try:
        stored = _stored.decode(raw)
    except msgspec.DecodeError:  # written by another version: walked again
        return None
    census = CampaignCensus(
        Counter(stored.by_state), Counter(stored.delivered), Counter(stored.delivery_times)
    )
    return SharedCensus(census, max(0.0, stored.kept_s - max(ttl_ms, 0) / 1000))


def held_code(client: redis.Redis, sid: str) -> str | None:
    """The code of the fault the account is held for (UNAUTHORIZED, CONNECT ...); None when it is not."""
    code: Any = client.hget(keys.account_hold(sid), keys.CODE)
    return None if code is None else code.decode()
