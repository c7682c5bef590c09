"""The public Python API: publish and steer campaigns from code, as the `campaign` CLI does, without
importing the worker. `Campaigns` is synchronous; `AsyncCampaigns` has the same methods as coroutines."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import dramatiq
import redis

from producer import control
from producer.control import CampaignStatus
from producer.job_queue import job_broker
from producer.mapping_rows import mapping_rows
from producer.publish import PublishResult, publish_campaign, publish_file
from producer.spec import build_spec, check_max_invalid
from redis_model import keys
from schemas.errors import UnknownCampaignError
from schemas.settings import Settings
from schemas.template import Template

Recipients = str | os.PathLike[str] | Iterable[Mapping[str, Any]]


class Campaigns:
    """Campaigns on one Redis: `Campaigns.from_environ()` reads REDIS_URL and the rest as the CLI does."""

    def __init__(self, client: redis.Redis, settings: Settings | None = None) -> None:
        self.client = client
        self.settings = settings or Settings()
        self._broker: dramatiq.Broker | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Campaigns:
        """From the environment (`os.environ` unless given): REDIS_URL, KALEYRA_SID, CAMPAIGN_* ..."""
        settings = Settings.from_environ(environ)
        return cls(redis.Redis.from_url(settings.redis_url), settings)

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> Campaigns:
        """On the Redis at `redis_url`, with `settings` (their own `redis_url` is not used)."""
        return cls(redis.Redis.from_url(redis_url), settings)

    def send_campaign(
        self,
        recipients: Recipients,
        *,
        sender: str,
        type: str,
        body: str,
        max_invalid: str | float | None = None,
        dry_run: bool = False,
        on_visible: Callable[[str], None] | None = None,
        **options: Any,
    ) -> PublishResult:
        """Publish a campaign to `recipients` (a CSV or JSON-lines file's path, or dicts with a `to` key
        and the body's fields); `options` are `campaign send`'s: prefix, unicode, template_id,
        entity_id, callback_profile_id, at, name, on_unknown, expires_in, flash, send_window.
        Refused input raises `schemas.errors.InputError` naming the value, and publishes nothing.
        `dry_run` counts and publishes nothing; `on_visible(campaign_id)` is called once the first job
        of a file is on its way (sending starts while the rest is read)."""
        spec = build_spec(settings=self.settings, sender=sender, type=type, body=body, **options)
        share = check_max_invalid(max_invalid) if isinstance(max_invalid, str) else max_invalid
        broker = None if dry_run else self._job_broker()
        common: dict[str, Any] = dict(
            client=self.client, broker=broker, settings=self.settings, dry_run=dry_run, max_invalid=share
        )
        if isinstance(recipients, str | os.PathLike):
            visible = (lambda: on_visible(spec.campaign_id)) if on_visible else None
            return publish_file(spec, os.fspath(recipients), on_visible=visible, **common)
        rows = mapping_rows(recipients, Template(spec.body).fields)
        return publish_campaign(spec, rows, **common)

    def status(self, campaign_id: str) -> CampaignStatus:
        """What `campaign status --json` prints; raises `UnknownCampaignError` for an unknown id."""
        return control.campaign_status(self.client, campaign_id)

    def pause(self, campaign_id: str) -> str:
        """Pause sending at the next chunk of each job; returns the state."""
        return control.pause(self.client, campaign_id)

    def resume(self, campaign_id: str) -> str:
        return control.resume(self.client, campaign_id)

    def cancel(self, campaign_id: str) -> str:
        """What is not sent yet is settled as cancelled; returns the state."""
        return control.cancel(self.client, campaign_id)

    def list_campaigns(self, *, limit: int = 50) -> list[CampaignStatus]:
        """The `limit` newest campaigns' status, newest first (campaigns published by versions without
        the campaign index are not listed)."""
        ids: list[bytes] = self.client.zrevrange(keys.CAMPAIGNS_BY_CREATION, 0, limit - 1)  # type: ignore[assignment]
        found = []
        for campaign_id in ids:
            try:
                found.append(self.status(campaign_id.decode()))
            except UnknownCampaignError:  # its keys are gone: purged by hand
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


class AsyncCampaigns:
    """`Campaigns` for asyncio code: each method runs the synchronous one in a thread, so that reading
    a file and its Redis round trips never block the event loop."""

    def __init__(self, campaigns: Campaigns) -> None:
        self.sync = campaigns

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> AsyncCampaigns:
        return cls(Campaigns.from_environ(environ))

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> AsyncCampaigns:
        return cls(Campaigns.from_url(redis_url, settings))

    async def send_campaign(self, recipients: Recipients, **options: Any) -> PublishResult:
        return await asyncio.to_thread(self.sync.send_campaign, recipients, **options)

    async def status(self, campaign_id: str) -> CampaignStatus:
        return await asyncio.to_thread(self.sync.status, campaign_id)

    async def pause(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.pause, campaign_id)

    async def resume(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.resume, campaign_id)

    async def cancel(self, campaign_id: str) -> str:
        return await asyncio.to_thread(self.sync.cancel, campaign_id)

    async def list_campaigns(self, *, limit: int = 50) -> list[CampaignStatus]:
        return await asyncio.to_thread(self.sync.list_campaigns, limit=limit)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)

    async def __aenter__(self) -> AsyncCampaigns:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
