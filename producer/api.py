"""The public Python API: publish and steer campaigns from code, as the `campaign` CLI does, without
importing the worker. `Campaigns` is synchronous; `AsyncCampaigns` has the same methods as coroutines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import dramatiq
import msgspec
import redis
import redis.asyncio as aioredis

from producer import control
from producer.control import CampaignStatus
from producer.job_queue import job_broker
from producer.mapping_rows import mapping_rows
from producer.messages import PYTHON_API_SCOPE, MessageToQueue, known, prepare_message, receipt
from producer.publish import PublishResult, publish_campaign, publish_file
from producer.spec import build_spec, check_max_invalid
from redis_model.campaign_index import newest_campaign_ids
from redis_model.connection import async_client, sync_client
from redis_model.message_intake import AsyncMessageIntake, MessageIntake
from schemas.campaign import CampaignState
from schemas.errors import SpecError, UnknownCampaignError
from schemas.message import MessageReceipt, MessageState
from schemas.settings import Settings
from schemas.template import Template

Recipients = str | bytes | os.PathLike[str] | Iterable[Mapping[str, Any]]


class Campaigns:
    """Campaigns on one Redis: `Campaigns.from_environ()` reads REDIS_URL and the rest as the CLI does."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        """On `client`, a `redis.Redis` that returns bytes (not `decode_responses=True`), with `settings`
        (default: from the environment, as `campaign` reads it)."""
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise TypeError("Campaigns needs a redis.Redis client without decode_responses=True")
        self.client = client
        self.settings = settings if settings is not None else Settings.from_environ()
        self.redis_url: str | None = None  # the client's URL, when it was made from one here
        self._broker: dramatiq.Broker | None = None
        self._intake: MessageIntake | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Campaigns:
        """From the environment (`os.environ` unless given): REDIS_URL, KALEYRA_SID, CAMPAIGN_* ..."""
        settings = Settings.from_environ(environ)
        return cls.from_url(settings.redis_url, settings)

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> Campaigns:
        """On the Redis at `redis_url` (through Sentinel when `settings` name sentinels: the URL then gives
        the database and credentials), with `settings` (default: from the environment)."""
        settings = msgspec.structs.replace(
            settings if settings is not None else Settings.from_environ(), redis_url=redis_url
        )
        made = cls(sync_client(settings), settings)
        made.redis_url = redis_url
        return made

    def send_campaign(
        self,
        recipients: Recipients,
        *,
        sender: str,
        type: str,
        body: str,
        prefix: str | None = None,
        unicode: str | None = None,
        template_id: str | None = None,
        entity_id: str | None = None,
        callback_profile_id: str | None = None,
        at: str | None = None,
        name: str | None = None,
        on_unknown: str = "hold",
        expires_in: str | None = None,
        flash: bool = False,
        send_window: str | None = None,
        callback_url: str | None = None,
        max_invalid: str | float | None = None,
        dry_run: bool = False,
        on_visible: Callable[[str], None] | None = None,
    ) -> PublishResult:
        """Publish a campaign to `recipients` (a CSV or JSON-lines file's path, or dicts with a `to` key
        and the body's fields); the options are `campaign send`'s. Refused input raises `InputError`
        naming the value, and publishes nothing. `max_invalid`: the share of rows that may be invalid
        numbers ("5%" or 0.05; default CAMPAIGN_MAX_INVALID). `dry_run` counts and publishes nothing;
        `on_visible(campaign_id)` is called once the first job of a file is on its way (sending starts
        while the rest is read)."""
        spec = build_spec(
            settings=self.settings, sender=sender, type=type, body=body, prefix=prefix, unicode=unicode,
            template_id=template_id, entity_id=entity_id, callback_profile_id=callback_profile_id, at=at,
            name=name, on_unknown=on_unknown, expires_in=expires_in, flash=flash, send_window=send_window,
            callback_url=callback_url,
        )  # fmt: skip
        share = check_max_invalid(max_invalid if max_invalid is None else str(max_invalid))
        broker = None if dry_run else self._job_broker()
        common: dict[str, Any] = dict(
            client=self.client, broker=broker, settings=self.settings, dry_run=dry_run, max_invalid=share
        )
        if isinstance(recipients, str | bytes | os.PathLike):
            visible = (lambda: on_visible(spec.campaign_id)) if on_visible else None
            return publish_file(spec, os.fsdecode(recipients), on_visible=visible, **common)
        rows = mapping_rows(recipients, Template(spec.body).fields)
        return publish_campaign(spec, rows, **common)

    def send_message(
        self,
        *,
        to: str,
        body: str,
        sender: str,
        type: str,
        reference: str | None = None,
        idempotency_key: str | None = None,
        prefix: str | None = None,
        unicode: str | None = None,
        template_id: str | None = None,
        entity_id: str | None = None,
        callback_profile_id: str | None = None,
        callback_url: str | None = None,
    ) -> MessageReceipt:
        """Queue one message on its type's lane (no campaign: one Redis command) and return its receipt.
        The options are `send_campaign`'s; the body is sent as written. `reference` (up to 64
        characters) comes back with its state. `callback_url`: where its end, then its final delivery
        report, are POSTed (docs/callbacks.md). With `idempotency_key`, a retry within 24 hours returns
        the first receipt and queues nothing; the same key for another message raises
        `IdempotencyConflict`. Refused input raises `SpecError` naming the value."""
        queued = prepare_message(
            self.settings, to=to, body=body, sender=sender, type=type, reference=reference,
            idempotency_key=idempotency_key, prefix=prefix, unicode=unicode, template_id=template_id,
            entity_id=entity_id, callback_profile_id=callback_profile_id, callback_url=callback_url,
        )  # fmt: skip
        return self._queue(queued)

    def message(self, message_id: str) -> MessageState:
        """Where a message `send_message` queued stands; `UnknownMessageError` for an id that is
        malformed, unknown or settled longer ago than CAMPAIGN_RETENTION."""
        return known(message_id, self._messages().state(message_id))

    def status(self, campaign_id: str) -> CampaignStatus:
        """What `campaign status --json` prints; raises `UnknownCampaignError` for an unknown id."""
        return control.campaign_status(self.client, campaign_id, sid=self.settings.sid)

    def pause(self, campaign_id: str) -> str:
        """Pause sending at the next chunk of each job; returns the state."""
        return control.pause(self.client, campaign_id, retention_s=self.settings.retention_s)

    def resume(self, campaign_id: str) -> str:
        return control.resume(self.client, campaign_id, retention_s=self.settings.retention_s)

    def cancel(self, campaign_id: str) -> str:
        """What is not sent yet is settled as cancelled; returns the state. The campaign expires
        CAMPAIGN_RETENTION later."""
        return control.cancel(self.client, campaign_id, retention_s=self.settings.retention_s)

    def purge(self, campaign_id: str, *, force: bool = False) -> str:
        """Remove a completed, failed or cancelled campaign from Redis now, rather than CAMPAIGN_RETENTION
        after it finished; returns the state it had. `InputError` for one not finished, or cancelled with
        recipients its workers have yet to count cancelled (unless `force`)."""
        return control.purge(self.client, campaign_id, force=force)

    def list_campaigns(self, *, limit: int = 50, state: str | None = None) -> list[CampaignStatus]:
        """The `limit` newest campaigns' status (in `state`, when given), newest first (campaigns
        published by versions without the campaign index are not listed). A state filter reads the
        index a page at a time until `limit` match."""
        if state is not None and state not in CampaignState.__members__.values():
            raise SpecError(f"state {state!r} is not a campaign state; use one of {', '.join(CampaignState)}")
        found = []
        for campaign_id in newest_campaign_ids(self.client, limit, state=state):
            try:
                found.append(self.status(campaign_id))
            except UnknownCampaignError:  # its keys are gone: expired or purged
                continue
        return found

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Campaigns:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _job_broker(self) -> dramatiq.Broker:
        if self._broker is None:
            self._broker = job_broker(self.client)
        return self._broker

    def _messages(self) -> MessageIntake:
        if self._intake is None:
            self._intake = MessageIntake(self.client)
        return self._intake

    def _queue(self, queued: MessageToQueue) -> MessageReceipt:
        message, lane, idempotency = queued
        if idempotency is None:
            return MessageReceipt(id=self._messages().queue(message, lane))
        once = self._messages().queue_once(
            message, lane, PYTHON_API_SCOPE, idempotency.key_digest, idempotency.request_digest
        )
        return receipt(idempotency, once)


class AsyncCampaigns:
    """`Campaigns` for asyncio code. Single messages go through a `redis.asyncio` client, since event
    producers send thousands a second; every other method runs the synchronous one in a thread, so
    that reading a file and its Redis round trips never block the event loop."""

    def __init__(self, campaigns: Campaigns, client: aioredis.Redis | None = None) -> None:
        """On `campaigns`; single messages through `client` (a `redis.asyncio.Redis` returning bytes)
        or, by default, one made on first use from the URL `campaigns` was made from."""
        self.sync = campaigns
        self._client = client
        self._intake: AsyncMessageIntake | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AsyncCampaigns:
        return cls(Campaigns.from_environ(environ))

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> AsyncCampaigns:
        return cls(Campaigns.from_url(redis_url, settings))

    async def send_campaign(
        self, recipients: Recipients, *, sender: str, type: str, body: str, **options: Any
    ) -> PublishResult:
        """`Campaigns.send_campaign`. A thread cannot be interrupted: cancelling this coroutine (a
        timeout) does not stop a publish under way, which goes on to the end; `list_campaigns()` shows
        it. Do not publish again blindly after a timeout."""
        return await asyncio.to_thread(
            self.sync.send_campaign, recipients, sender=sender, type=type, body=body, **options
        )

    async def send_message(
        self,
        *,
        to: str,
        body: str,
        sender: str,
        type: str,
        reference: str | None = None,
        idempotency_key: str | None = None,
        **options: str | None,
    ) -> MessageReceipt:
        """`Campaigns.send_message` (the same options), natively async: no thread per call."""
        message, lane, idempotency = prepare_message(
            self.sync.settings, to=to, body=body, sender=sender, type=type, reference=reference,
            idempotency_key=idempotency_key, **options,
        )  # fmt: skip
        if idempotency is None:
            return MessageReceipt(id=await self._messages().queue(message, lane))
        once = await self._messages().queue_once(
            message, lane, PYTHON_API_SCOPE, idempotency.key_digest, idempotency.request_digest
        )
        return receipt(idempotency, once)

    async def message(self, message_id: str) -> MessageState:
        """`Campaigns.message`, natively async."""
        return known(message_id, await self._messages().state(message_id))

    async def status(self, campaign_id: str) -> CampaignStatus:
        return await asyncio.to_thread(self.sync.status, campaign_id)

    async def pause(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.pause, campaign_id)

    async def resume(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.resume, campaign_id)

    async def cancel(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.cancel, campaign_id)

    async def purge(self, campaign_id: str, *, force: bool = False) -> str:
        return await asyncio.to_thread(self.sync.purge, campaign_id, force=force)

    async def list_campaigns(self, *, limit: int = 50, state: str | None = None) -> list[CampaignStatus]:
        return await asyncio.to_thread(self.sync.list_campaigns, limit=limit, state=state)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        await asyncio.to_thread(self.sync.close)

    def _messages(self) -> AsyncMessageIntake:
        if self._intake is None:
            if self._client is None:
                if self.sync.redis_url is None:
                    raise TypeError(
                        "AsyncCampaigns on a Campaigns made from a client needs "
                        "client=redis.asyncio.Redis(...) for single messages"
                    )
                self._client = async_client(self.sync.settings)
            self._intake = AsyncMessageIntake(self._client)
        return self._intake

    async def __aenter__(self) -> AsyncCampaigns:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
