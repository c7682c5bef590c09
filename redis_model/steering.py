"""Steer a campaign: move it between states (`transition`), and end a cancelled one's publishing."""

from __future__ import annotations

import redis

from redis_model import keys
from redis_model.scripts import source
from schemas.campaign import CampaignState


class CampaignSteering:
    """The state changes `campaign pause|resume|cancel` make, on one Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
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
            keys=[keys.campaign(campaign_id)], args=[target.value, *(s.value for s in sources)]
        )
        return previous.decode() if previous is not None else None

    def end_publishing(self, campaign_id: str, now: float) -> None:
        """A producer still publishing the (just cancelled) campaign stops at its next page; one that died
        mid-file lets go here, so the campaign can finish."""
        self._end_publishing(keys=[keys.campaign(campaign_id)], args=[now])
