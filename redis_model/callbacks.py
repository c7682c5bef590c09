"""The outbox of callbacks to producers: what to POST where, until its receiver answers 2xx or the
attempts run out, and each owner's counts of them.

A callback is put in the outbox (`keys.CALLBACKS`, due at once in `keys.CALLBACKS_DUE`) by the script
that makes its events happen, in the same step, so that none is lost to a process dying in between:
`settle_messages` for a single message's end, `record_reports` for a first final delivery report, and
`tell_finished_campaigns` for a campaign's end (campaigns with a callback url are watched from their
publishing until then). A sender claims due callbacks (`claim_due`), POSTs them and records each attempt
(`attempted`): a callback is told at least once, and twice only when a sender dies between its POST and
recording it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import msgspec
import redis.asyncio as aioredis

from redis_model import keys
from redis_model.scripts import source
from schemas.callback import MessageEvent, encode_event
from schemas.message import Callbacks, MessageStatus, SingleMessage

# The keys every script that puts a callback in the outbox takes, in this order.
OUTBOX = (keys.CALLBACKS, keys.CALLBACKS_DUE, keys.CALLBACK_IDS)
# What an attempt came to.
SENT, RETRY, FAILED = "sent", "retry", "failed"
# The owner's fields the counts of its callbacks are read from.
CALLBACK_FIELDS = (keys.CALLBACKS_MADE, keys.CALLBACKS_SENT, keys.CALLBACKS_FAILED, keys.CALLBACK_ATTEMPTS,
                   keys.CALLBACK_AT, keys.CALLBACK_ERROR)  # fmt: skip
# Watched campaigns a pass looks at, and how soon one still running is looked at again.
WATCHED_A_PASS = 200
WATCH_EVERY_S = 2.0


class StoredCallback(msgspec.Struct, frozen=True, kw_only=True):
    """A callback as the outbox holds it: where it goes, whose it is (the owner's hash), when it was
    made, the attempts made, and its events as the scripts wrote them (`schemas.callback.render_body`)."""

    url: str
    owner: str
    created: float
    attempts: int
    events: msgspec.Raw


class Claimed(NamedTuple):
    id: str
    callback: StoredCallback


class _Target(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where a single message's final delivery report is told (`keys.callback_targets`)."""

    url: str
    owner: str
    id: str
    reference: str | None = None


_stored = msgspec.json.Decoder(StoredCallback)
_encoder = msgspec.json.Encoder()


def message_target(message_id: str, message: SingleMessage) -> bytes:
    """Where the final delivery report of single message `message_id` is told (it has a callback url)."""
    assert message.callback_url is not None
    return _encoder.encode(
        _Target(message.callback_url, keys.message(message_id), message_id, message.reference)
    )


def encode_targets(targets: Mapping[int, bytes]) -> bytes:
    """A request's targets as `settle_messages` takes them: position -> target, each as text."""
    return _encoder.encode({str(position): target.decode() for position, target in targets.items()})


def message_settled(
    message_id: str, message: SingleMessage, status: MessageStatus, kaleyra_id: str, code: str, now: float
) -> bytes:
    """The event of a single message's end, as its callback tells it."""
    return encode_event(
        MessageEvent(
            status=status.value,
            at=now,
            id=message_id,
            reference=message.reference,
            message_id=kaleyra_id or None,
            code=code or None,
        )
    )


def callbacks_of(fields: Mapping[str, Any]) -> Callbacks | None:
    """The counts of an owner's callbacks from its hash's CALLBACK_FIELDS (None when it made none)."""
    made = int(fields.get(keys.CALLBACKS_MADE) or 0)
    if not made:
        return None
    sent, failed = int(fields.get(keys.CALLBACKS_SENT) or 0), int(fields.get(keys.CALLBACKS_FAILED) or 0)
    at, error = fields.get(keys.CALLBACK_AT), fields.get(keys.CALLBACK_ERROR)
    return Callbacks(
        made=made, sent=sent, failed=failed, pending=max(made - sent - failed, 0),
        attempts=int(fields.get(keys.CALLBACK_ATTEMPTS) or 0),
        last_attempt_at=float(at) if at is not None else None,
        last_error=(error.decode() if isinstance(error, bytes) else error) if error is not None else None,
    )  # fmt: skip


class AsyncCallbackOutbox:
    """The outbox as a sender sees it (on a `redis.asyncio.Redis` returning bytes)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._claim = client.register_script(source("claim_callbacks"))
        self._attempted = client.register_script(source("callback_attempted"))
        self._tell_finished = client.register_script(source("tell_finished_campaigns"))

    async def claim_due(self, now: float, count: int, *, lease_s: float) -> list[Claimed]:
        """Up to `count` callbacks due by `now`, each claimed until `now + lease_s`."""
        reply: Any = await self._claim(
            keys=[keys.CALLBACKS, keys.CALLBACKS_DUE], args=[now, now + lease_s, count]
        )
        return [Claimed(reply[at].decode(), _stored.decode(reply[at + 1])) for at in range(0, len(reply), 2)]

    async def of_campaigns_gone(self, claimed: list[Claimed]) -> set[str]:
        """The ids of the claimed callbacks whose owner is a campaign no longer in Redis (purged, or past
        its retention): its data is gone, so are its callbacks."""
        of_campaigns = [one for one in claimed if keys.is_campaign(one.callback.owner)]
        if not of_campaigns:
            return set()
        async with self.client.pipeline(transaction=False) as pipe:
            for one in of_campaigns:
                pipe.exists(one.callback.owner)
            there = await pipe.execute()
        return {one.id for one, exists in zip(of_campaigns, there, strict=True) if not exists}

    async def attempted(
        self,
        claimed: Claimed,
        came_to: str,
        *,
        now: float | None = None,
        next_at: float = 0.0,
        reason: str = "",
    ) -> None:
        """Record an attempt: SENT and FAILED (given up) remove the callback; RETRY makes it due at
        `next_at`, with the attempt counted. `reason`: why the attempt failed."""
        now = time.time() if now is None else now
        callback = claimed.callback
        again = b""
        if came_to == RETRY:
            again = _encoder.encode(msgspec.structs.replace(callback, attempts=callback.attempts + 1))
        await self._attempted(
            keys=[keys.CALLBACKS, keys.CALLBACKS_DUE, callback.owner],
            args=[claimed.id, came_to, now, next_at, again, reason],
        )

    async def tell_finished_campaigns(self, *, now: float | None = None, count: int = WATCHED_A_PASS) -> int:
        """Put a callback in the outbox for each watched campaign that finished; returns how many."""
        now = time.time() if now is None else now
        watched: Any = await self.client.zrangebyscore(
            keys.CALLBACK_CAMPAIGNS, "-inf", now, start=0, num=count
        )
        if not watched:
            return 0
        campaign_ids = [member.decode() for member in watched]
        told: Any = await self._tell_finished(
            keys=[keys.CALLBACK_CAMPAIGNS, *OUTBOX, *map(keys.campaign, campaign_ids)],
            args=[now, now + WATCH_EVERY_S, *campaign_ids],
        )
        return int(told)

    async def pending(self) -> int:
        """Callbacks in the outbox: to attempt, or being attempted."""
        return int(await self.client.hlen(keys.CALLBACKS))
