"""Steer a campaign: move it between states (`transition`), end a cancelled one's publishing, purge one."""

from __future__ import annotations

from typing import NamedTuple

import redis

from redis_model import keys
from redis_model.scripts import source
from schemas.campaign import CampaignState


class Purge(NamedTuple):
    """What `purge` found: `purged`, `unfinished` or `settling` (nothing removed), or `unknown`."""

    verdict: str
    state: str
    pending: int  # recipients not settled yet (a cancelled campaign's, until workers count them)


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
    """Unlink a finished campaign's keys and its index entry, in one step; a cancelled one with
    recipients its workers have yet to count cancelled only when `force`d."""
    verdict, state, pending = client.register_script(source("purge"))(
        keys=[*keys.all_keys(campaign_id), keys.CAMPAIGNS_BY_CREATION],
        args=[campaign_id, "1" if force else "0"],
    )
    return Purge(verdict.decode(), state.decode(), int(pending))
