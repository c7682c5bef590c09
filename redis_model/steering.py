"""Steer a campaign: move it between states (`transition`), end a cancelled one's publishing, purge one;
apply the retention to finished campaigns left without an expiry."""

from __future__ import annotations

from typing import NamedTuple

import redis

from redis_model import campaign_index, keys, records
from redis_model.delivery import request_ids
from redis_model.scripts import source
from schemas.campaign import CampaignState


class Purge(NamedTuple):
    """What `purge` found: `purged`, `unfinished` or `settling` (nothing removed), or `unknown`."""

    verdict: str
    state: str
    pending: int  # recipients not settled yet (a cancelled campaign's, until workers count them)


class RetentionApplied(NamedTuple):
    """What `apply_retention` did: finished campaigns whose keys expire from now on (`applied`), and
    those already past their retention, removed now (`removed`)."""

    applied: int
    removed: int


class CampaignSteering:
    """The state changes `campaign pause|resume|cancel` make, on one Redis; a campaign that finishes
    here expires `retention_s` later."""

    def __init__(self, client: redis.Redis, *, retention_s: float) -> None:
        self.client = client
        self.retention_s = int(retention_s)
        self._transition = client.register_script(source("transition"))
        self._end_publishing = client.register_script(source("end_publishing"))

    def release_at(self, campaign_id: str) -> float | None:
        """When a scheduled campaign's chunks start going to Kaleyra; None when it has no release."""
        raw: bytes | None = self.client.hget(keys.campaign(campaign_id), keys.RELEASE_AT)  # type: ignore[assignment]
        return float(raw) if raw is not None else None

    def transition(
        self, campaign_id: str, target: CampaignState, sources: tuple[CampaignState, ...]
    ) -> str | None:
        """Move the campaign to `target` if it is in one of `sources`, atomically; return the state it
        had (moved or not), or None when there is no such campaign."""
        previous = self._transition(
            keys=keys.retained_keys(campaign_id),
            args=[self.retention_s, target.value, *(s.value for s in sources)],
        )
        return previous.decode() if previous is not None else None

    def end_publishing(self, campaign_id: str, now: float) -> None:
        """A producer still publishing the (just cancelled) campaign stops at its next page; one that died
        mid-file lets go here, so the campaign can finish."""
        self._end_publishing(keys=keys.retained_keys(campaign_id), args=[now, self.retention_s])


def purge_campaign(client: redis.Redis, campaign_id: str, *, force: bool = False) -> Purge:
    """Unlink a finished campaign's keys and its index entry, in one step, then its requests' delivery
    keys; a cancelled one with recipients its workers have yet to count cancelled only when `force`d."""
    verdict, state, pending = client.register_script(source("purge"))(
        keys=[keys.CAMPAIGNS_BY_CREATION, keys.purged_outcomes(campaign_id), keys.CALLBACK_CAMPAIGNS,
              keys.outcomes(campaign_id), *keys.all_keys(campaign_id)],
        args=[campaign_id, "1" if force else "0"],
    )  # fmt: skip
    if verdict in (b"purged", b"unknown"):  # unknown: perhaps purged by a call that died before this
        _forget_requests(client, campaign_id)
    return Purge(verdict.decode(), state.decode(), int(pending))


def _forget_requests(client: redis.Redis, campaign_id: str, *, page: int = 200) -> None:
    """Remove the delivery keys of a purged campaign's requests (their strings, early reports, places in
    the indexes of reconciliation and of early reports), a page of outcome records at a time, then the
    records."""
    purged = keys.purged_outcomes(campaign_id)
    requests: list[str] = []
    for _, raw in client.hscan_iter(purged, count=page):
        outcome = records.decode_outcome(raw)
        requests += request_ids(outcome.full_message_ids())
        if len(requests) >= page:
            _unlink_requests(client, requests)
            requests = []
    _unlink_requests(client, requests)
    client.unlink(purged)


def _unlink_requests(client: redis.Redis, requests: list[str]) -> None:
    if not requests:
        return
    with client.pipeline(transaction=False) as pipe:
        pipe.unlink(*map(keys.delivery, requests), *map(keys.early_reports, requests))
        pipe.zrem(keys.UNREPORTED, *requests)
        pipe.zrem(keys.EARLY_REPORTS, *map(keys.delivery, requests))
        pipe.execute()


def apply_retention(client: redis.Redis, *, retention_s: float, page: int = 200) -> RetentionApplied:
    """Walk the index by creation, oldest first, and give every finished campaign's keys left without
    an expiry (a campaign finished before retention existed) the one it would have had: `retention_s`
    after it finished (from now when that is not recorded); past that, they go now. Campaigns not
    finished, and cancelled ones with recipients still pending, are left alone. Idempotent."""
    script = client.register_script(source("apply_retention"))
    applied = removed = start = 0
    while ids := campaign_index.oldest_campaign_ids(client, start, page):
        with client.pipeline(transaction=False) as pipe:
            for campaign_id in ids:
                script(
                    keys=[*keys.retained_keys(campaign_id), keys.CAMPAIGNS_BY_CREATION],
                    args=[campaign_id, int(retention_s)],
                    client=pipe,
                )
            verdicts = [verdict.decode() for verdict in pipe.execute()]
        applied += verdicts.count("applied")
        removed += verdicts.count("removed")
        start += len(ids) - verdicts.count("removed")  # the removed left the index: the rest moved up
    return RetentionApplied(applied, removed)
