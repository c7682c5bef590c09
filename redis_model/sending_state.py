"""Campaign state as workers see it: start a job, expire a campaign, count retries, hold the account.

A job's progress is the number of its recipients settled (so workers may chunk
differently); `redis_model.ledger` moves it forward.
"""

from __future__ import annotations

import hashlib
import time

import msgspec
import redis.asyncio as aioredis

from redis_model import keys, records
from redis_model.scripts import source
from schemas.campaign import CampaignSpec, CampaignState, Job
from schemas.errors import AccountFault, GatewayError
from schemas.settings import Settings

# A hold that no worker renews for this many probe intervals lapses.
HOLD_LAPSE_PROBES = 10


class JobStart(msgspec.Struct, frozen=True, kw_only=True):
    state: str
    spec: CampaignSpec
    job: Job | None  # None while the campaign is paused, held, or waits for its release
    settled: int  # recipients of this job already settled
    held_until: float | None = None  # a scheduled campaign's release (Unix time), while it is held
    held_reason: str | None = None  # while the account is held: why
    probe: bool = False  # held: this worker asks the gateway now whether the account may send again


class CampaignStore:
    def __init__(self, client: aioredis.Redis, settings: Settings) -> None:
        self.client = client
        self._hold_key = keys.account_hold(settings.sid)
        self._key_fingerprint = key_fingerprint(settings)
        self._probe_s = settings.hold_probe_ms / 1000
        self._retention_s = int(settings.retention_s)
        self._begin = client.register_script(source("begin_job"))
        self._expire = client.register_script(source("expire"))
        self._hold = client.register_script(source("hold_account"))
        self._held = client.register_script(source("account_hold"))
        self._note_error = client.register_script(source("note_error"))
        self._mark_waiting = client.register_script(source("mark_waiting"))

    async def begin_job(self, campaign_id: str, job_index: int) -> JobStart | None:
        """Mark the campaign running (or held, while the account is) and load what the job needs;
        None if the campaign or job is gone."""
        found = await self._begin(
            keys=[keys.campaign(campaign_id), keys.progress(campaign_id), keys.jobs(campaign_id),
                  self._hold_key],
            args=[job_index, time.time(), self._key_fingerprint, self._probe_s],
        )  # fmt: skip
        if not found:
            return None
        state, spec, settled, job, release, held_reason, probe = found
        state = state.decode()
        waits = release is not None or held_reason is not None
        if job is None and state != CampaignState.PAUSED and not waits:
            return None
        return JobStart(
            state=state,
            spec=records.decode_spec(spec),
            job=records.decode_job(job) if job is not None else None,
            settled=int(settled),
            held_until=float(release) if release is not None else None,
            held_reason=held_reason.decode() if held_reason is not None else None,
            probe=probe == 1,
        )

    async def hold_account(self, campaign_id: str | None, fault: GatewayError) -> None:
        """Stop the account's sending (for a refused key, that of the workers with this key): their
        jobs wait, the campaign's state says why (None: a single message met the fault), until a
        probe finds the gateway taking requests."""
        scope = "config" if isinstance(fault, AccountFault) else "gateway"  # whom the fault holds
        await self._hold(
            keys=[self._hold_key, *([keys.campaign(campaign_id)] if campaign_id is not None else [])],
            args=[fault.code, fault.message, time.time(), self._key_fingerprint, self._probe_s,
                  HOLD_LAPSE_PROBES, _shown(fault), scope],
        )  # fmt: skip

    async def account_hold(self) -> tuple[str | None, bool]:
        """Why the account is held for this worker (None: it is not), and whether this worker is the
        one to probe the gateway now; for senders without a campaign (single messages)."""
        reason, probe = await self._held(
            keys=[self._hold_key], args=[time.time(), self._key_fingerprint, self._probe_s]
        )
        return (reason.decode() if reason is not None else None), probe == 1

    async def lift_hold(self) -> None:
        """The gateway takes the account's requests again: held jobs send when they next come back."""
        await self.client.delete(self._hold_key)

    async def note_error(self, campaign_id: str, error: GatewayError) -> None:
        """Shown by `campaign status`: the last gateway error one of the campaign's chunks met (nothing
        for a campaign gone: expired, or purged while its workers drained it)."""
        await self._note(campaign_id, error, retried=0)

    async def expire(self, campaign_id: str) -> bool:
        """Cancel the campaign: its expiry passed (its keys expire after the retention). False if it had
        already finished or been cancelled."""
        return bool(await self._expire(keys=keys.retained_keys(campaign_id), args=[self._retention_s]))

    async def mark_waiting(self, campaign_id: str, job_index: int, opens_at: float, recipients: int) -> None:
        """Shown by `campaign status`: the job waits for its sending window (nothing for a campaign gone)."""
        entry = records.encode_waiting(opens_at, recipients)
        await self._mark_waiting(
            keys=[keys.campaign(campaign_id), keys.waiting(campaign_id)], args=[job_index, entry]
        )

    async def clear_waiting(self, campaign_id: str, job_index: int) -> None:
        await self.client.hdel(keys.waiting(campaign_id), str(job_index))

    async def count_retry(self, campaign_id: str, error: GatewayError) -> None:
        """A request retried after `error`: counted, and shown as the campaign's last error."""
        await self._note(campaign_id, error, retried=1)

    async def _note(self, campaign_id: str, error: GatewayError, *, retried: int) -> None:
        await self._note_error(keys=[keys.campaign(campaign_id)], args=[_shown(error), time.time(), retried])


def _shown(error: GatewayError) -> str:
    """A gateway error as status shows it: `code: message`."""
    return f"{error.code}: {error.message}"


def key_fingerprint(settings: Settings) -> str:
    """Tells configurations (API key, SID, gateway URL) apart in Redis without storing the key: a
    worker with another one than the one refused (restarted with a rotated key) is not held by it."""
    configuration = f"{settings.sid}\n{settings.api_key}\n{settings.base_url}"
    return hashlib.sha256(configuration.encode()).hexdigest()[:16]
