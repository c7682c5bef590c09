"""What `campaign resend` keeps in Redis: its lock, the jobs it stages, and the `reopen` that commits them."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

import msgspec
import redis
from redis.typing import EncodableT

from redis_model import keys, records
from redis_model.outcomes import OutcomeRecord
from redis_model.scripts import joined_numbers, source
from schemas.campaign import CampaignSpec, ChunkOutcome, Job, Recipient
from schemas.delivery import trace_code

LOCK_TTL_S = 600  # a resend that dies holding the lock frees the campaign after this


class ResendTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The campaign a resend reads under its lock."""

    state: str
    jobs: int  # jobs published so far: where the resend's new jobs start
    spec: CampaignSpec
    publishing_lease: float | None  # while a producer still reads its file: when its lease ends


class ResendStore:
    """One campaign's resend: lock it, read it, stage jobs, then commit them in one step."""

    def __init__(self, client: redis.Redis, campaign_id: str) -> None:
        self.client = client
        self.campaign_id = campaign_id
        self._reopen = client.register_script(source("reopen"))
        self._release_lock = client.register_script(source("release_lock"))
        self._listed = client.register_script(source("listed"))

    def lock(self) -> str | None:
        """Take the campaign's resend lock; its token, or None while another resend holds it."""
        token = uuid.uuid4().hex
        taken = self.client.set(keys.resend_lock(self.campaign_id), token, nx=True, ex=LOCK_TTL_S)
        return token if taken else None

    def unlock(self, token: str) -> None:
        """Release the lock if it is still ours (compare and delete in one step)."""
        self._release_lock(keys=[keys.resend_lock(self.campaign_id)], args=[token])

    def target(self) -> ResendTarget | None:
        """The campaign's state, job count, spec and publishing lease; None when there is no such campaign."""
        fields = [keys.STATE, keys.JOBS, keys.SPEC, keys.PUBLISHING]
        found: list[bytes | None] = self.client.hmget(keys.campaign(self.campaign_id), fields)  # type: ignore[assignment]
        state, jobs, spec, publishing = found
        if state is None or jobs is None or spec is None:
            return None
        return ResendTarget(
            state=state.decode(),
            jobs=int(jobs),
            spec=records.decode_spec(spec),
            publishing_lease=float(publishing) if publishing is not None else None,
        )

    def state(self) -> str:
        """The campaign's state now ("" when it is gone)."""
        state: bytes | None = self.client.hget(keys.campaign(self.campaign_id), keys.STATE)  # type: ignore[assignment]
        return state.decode() if state else ""

    def stage_job(self, job: Job) -> None:
        """Write a job no message points to yet: invisible to workers until `reopen` and the enqueue."""
        self.client.hset(keys.jobs(self.campaign_id), str(job.index), records.encode_job(job))

    def drop_jobs(self, indexes: Sequence[int]) -> None:
        """Remove staged jobs that will not be committed."""
        self.client.hdel(keys.jobs(self.campaign_id), *map(str, indexes))

    def listed(self, sid: str, recipients: Sequence[Recipient]) -> list[int]:
        """The 1-based positions, ascending, of these numbers on the account's suppression list."""
        return list(self._listed(keys=[keys.suppression_list(sid)], args=[joined_numbers(recipients)]))

    def reopen(
        self,
        picked: Sequence[OutcomeRecord],
        *,
        failed: int,
        unknown: int,
        failed_by_code: Mapping[str, int],
        new_jobs: int,
    ) -> bool:
        """Mark the picked chunks republished, move `failed` and `unknown` recipients back to pending,
        count the new jobs and queue a finished campaign again (its keys no longer expire), in one step.
        False, with nothing changed, when a picked record is no longer the one read (another resend
        marked it)."""
        marked = [(record, msgspec.structs.replace(record.outcome, republished=True)) for record in picked]
        counters = {keys.FAILED: -failed, keys.UNKNOWN: -unknown, keys.REPUBLISHED: failed + unknown,
                    keys.JOBS: new_jobs}  # fmt: skip
        by_code = {code: -n for code, n in failed_by_code.items()}
        return self._reopen_marked(keys.failures(self.campaign_id), counters, by_code, marked)

    def reopen_undelivered(
        self,
        marked: Sequence[tuple[OutcomeRecord, ChunkOutcome]],
        *,
        by_trace: Mapping[str, int],
        new_jobs: int,
    ) -> bool:
        """`resend --undelivered`: write each chunk's record with its recipients sent again marked
        `resent`, move them from `submitted` (and their reports from `undelivered` and their traces,
        `by_trace`) back to pending, so that their new messages count afresh; count them, count the new
        jobs and queue a finished campaign again, in one step. False, with nothing changed, when a
        picked record is no longer the one read."""
        resent = sum(by_trace.values())
        counters = {keys.SUBMITTED: -resent, keys.UNDELIVERED: -resent, keys.RESENT_UNDELIVERED: resent,
                    keys.JOBS: new_jobs}  # fmt: skip
        by_code = {str(trace_code(trace)): -n for trace, n in by_trace.items()}
        return self._reopen_marked(keys.campaign_traces(self.campaign_id), counters, by_code, marked)

    def _reopen_marked(
        self,
        codes_key: str,
        counters: Mapping[str, int],
        by_code: Mapping[str, int],
        marked: Sequence[tuple[OutcomeRecord, ChunkOutcome]],
    ) -> bool:
        campaign_id = self.campaign_id
        args: list[EncodableT] = [campaign_id, len(counters)]
        for counter, amount in counters.items():
            args += [counter, str(amount)]
        args.append(len(by_code))
        for code, amount in by_code.items():
            args += [code, str(amount)]
        for ((job, offset), _, stored), outcome in marked:
            args += [keys.outcome_field(job, offset), stored, records.encode_outcome(outcome)]
        applied = self._reopen(
            keys=[keys.campaign(campaign_id), codes_key, keys.outcomes(campaign_id), keys.CALLBACK_CAMPAIGNS,
                  keys.failures(campaign_id), *keys.retained_keys(campaign_id)],
            args=args,
        )  # fmt: skip
        return bool(applied)
