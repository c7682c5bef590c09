"""What one worker process shares across its jobs: settings, Redis, the Kaleyra client, a logger."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis
import structlog

from redis_model.connection import async_client
from redis_model.ledger import ChunkLedger
from redis_model.sending_state import CampaignStore
from schemas.settings import Settings
from worker.gateway import KaleyraClient
from worker.metrics import CountedLedger
from worker.rate_limit import AccountRateLimit
from worker.urgent import UrgentWatch

RedisFactory = Callable[[], aioredis.Redis]


class WorkerContext:
    """Opened lazily on the worker's event loop (nothing connects at import) and closed at shutdown."""

    def __init__(self, settings: Settings, redis_factory: RedisFactory | None = None) -> None:
        self.settings = settings
        self._redis_factory = redis_factory or (lambda: async_client(settings))
        self._store: CampaignStore | None = None
        self._ledger: ChunkLedger | None = None
        self._rate_limit: AccountRateLimit | None = None
        # Names this process in chunk claims; a message id is appended per job.
        self.identity = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        # Set when the worker begins to shut down: jobs stop between chunks and go back to the queue.
        self.stopping = False
        # OTP and TXN jobs waiting for one of this process's worker threads, for which a bulk job
        # hands its thread over after its chunk (the broker's middleware points it at dramatiq's
        # work queue at boot; until then, none is seen).
        self.urgent = UrgentWatch()
        self._gateway: KaleyraClient | None = None
        self.log = structlog.get_logger("worker")

    @property
    def store(self) -> CampaignStore:
        if self._store is None:
            self._store = CampaignStore(self._redis_factory(), self.settings)
        return self._store

    @property
    def ledger(self) -> ChunkLedger:
        if self._ledger is None:
            self._ledger = CountedLedger(  # counts what it settles (worker.metrics)
                self.store.client,
                lease_ms=self.settings.lease_ms,
                retention_s=self.settings.retention_s,
                poll_after_s=self.settings.dlr_poll_after_s,
                pause_on_failures=(self.settings.failure_pause_share, self.settings.failure_pause_least),
            )
        return self._ledger

    @property
    def rate_limit(self) -> AccountRateLimit:
        if self._rate_limit is None:
            self._rate_limit = AccountRateLimit(self.store.client, self.settings.sid)
        return self._rate_limit

    @property
    def gateway(self) -> KaleyraClient:
        if self._gateway is None:
            self._gateway = KaleyraClient(self.settings)
        return self._gateway

    async def aclose(self) -> None:
        if self._gateway is not None:
            await self._gateway.close()
            self._gateway = None
        if self._store is not None:
            await self._store.client.aclose()
            self._store = None
            self._ledger = None
            self._rate_limit = None
