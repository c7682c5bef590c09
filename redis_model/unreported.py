"""The index of requests to reconcile (`keys.UNREPORTED`): settled requests whose nodes may still lack
a final delivery report, by when to ask Kaleyra's status query for them next.

The settle scripts add a request `CAMPAIGN_DLR_POLL_AFTER` after its settlement. A poller claims the
due ones (moving them past a lease, so that two pollers never ask for one at once), reads their
delivery strings, and then removes each (every node final, or given up) or puts it back for later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from redis_model import keys
from redis_model.delivery import CAMPAIGN, Header, decode_header, unreported_positions
from redis_model.scripts import source


class Unreported(NamedTuple):
    """A claimed request: its header (None when its delivery string, or its campaign, is gone) and
    the positions of its nodes without a final record."""

    request_id: str
    header: Header | None
    pending: list[int]
    final: int  # nodes with a final record


class UnreportedIndex:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._claim = client.register_script(source("claim_unreported"))

    async def claim_due(self, now: float, count: int, *, lease_s: float) -> list[Unreported]:
        """Up to `count` requests due by `now`, each claimed until `now + lease_s`, as they stand."""
        claimed: Any = await self._claim(keys=[keys.UNREPORTED], args=[now, now + lease_s, count])
        request_ids = [member.decode() for member in claimed]
        if not request_ids:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for request_id in request_ids:
                pipe.get(keys.delivery(request_id))
            strings = await pipe.execute()
        found = [_unreported(request_id, raw) for request_id, raw in zip(request_ids, strings, strict=True)]
        return await self._without_gone_campaigns(found)

    async def _without_gone_campaigns(self, found: list[Unreported]) -> list[Unreported]:
        """A campaign's requests read as gone (nothing to ask) once the campaign is: purged, or expired."""
        campaigns = sorted({u.header.campaign_id for u in found if u.header and u.header.kind == CAMPAIGN})
        if not campaigns:
            return found
        async with self.client.pipeline(transaction=False) as pipe:
            for campaign_id in campaigns:
                pipe.exists(keys.campaign(campaign_id))
            gone = {campaign_id for campaign_id, there in zip(campaigns, await pipe.execute(), strict=True)
                    if not there}  # fmt: skip
        return [
            Unreported(u.request_id, None, [], 0) if u.header and u.header.campaign_id in gone else u
            for u in found
        ]

    async def settle(self, done: Sequence[str], later: dict[str, float]) -> None:
        """Remove the `done` requests from the index; put the others back, each for its time."""
        async with self.client.pipeline(transaction=False) as pipe:
            if done:
                pipe.zrem(keys.UNREPORTED, *done)
            if later:
                pipe.zadd(keys.UNREPORTED, later, xx=True)
            await pipe.execute()

    async def due_at(self, request_id: str) -> float | None:
        """When the request is looked at next (None: not in the index)."""
        score: Any = await self.client.zscore(keys.UNREPORTED, request_id)
        return None if score is None else float(score)


def _unreported(request_id: str, raw: bytes | None) -> Unreported:
    header = decode_header(raw) if raw else None
    if raw is None or header is None:
        return Unreported(request_id, None, [], 0)
    pending, final = unreported_positions(raw, header)
    return Unreported(request_id, header, pending, final)
