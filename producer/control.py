"""Read and steer a published campaign: status, pause, resume, cancel."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import redis

from redis_model import keys, records
from redis_model.scripts import source
from schemas.campaign import FINISHED_STATES, CampaignState, InvalidRow
from schemas.errors import InputError, UnknownCampaignError

_COUNTERS = (
    keys.TOTAL,
    keys.SUBMITTED,
    keys.FAILED,
    keys.UNKNOWN,
    keys.CANCELLED,
    keys.INVALID,
    keys.DUPLICATES,
    keys.SUPPRESSED,
    keys.SEGMENTS,
    keys.RETRIED,
    keys.RESENT,
    keys.REPUBLISHED,
    keys.JOBS,
)

_ACTIVE = (CampaignState.QUEUED, CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.HELD)
# A campaign with recipients to send that no worker has looked at for this long: status says so.
# Twice the longest a waiting job (quiet hours, a hold) stays away before a worker looks again.
IDLE_AFTER_S = 120.0


class CampaignStatus(msgspec.Struct, frozen=True, kw_only=True):
    """`campaign status --json`. submitted + failed + unknown + cancelled + pending == total."""

    campaign_id: str
    name: str | None
    type: str
    state: str
    total: int
    submitted: int
    failed: int
    unknown: int
    cancelled: int
    pending: int
    invalid: int
    duplicates: int
    suppressed: int  # left out at publish: on the account's suppression list
    segments: int  # SMS segments over all `total` recipients
    retried: int
    resent: int  # recipients whose chunk was sent again after its worker vanished (policy `resend`)
    republished: int  # failed or unknown recipients published again by `campaign resend`
    jobs: int
    failures: dict[str, int]
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    waiting_for_window: int  # pending recipients whose job waits for its sending window (quiet hours)
    window_opens_at: float | None  # the soonest such job may send again
    scheduled_for: str | None  # Kaleyra's `time`, as given with --at
    release_at: float | None  # when a scheduled campaign's chunks start going to Kaleyra
    # The producer is still reading the file: total and jobs grow, and sending has begun.
    publishing: bool = False
    # It stopped mid-file without finishing (killed): what it published is sent; cancel to end it.
    publisher_lost: bool = False
    held_reason: str | None = None  # state `held`: why the account's sending stopped
    last_error: str | None = None  # the last gateway error a chunk met (`code: message`), and when
    last_error_at: float | None = None
    # Seconds since a worker last took one of its jobs or settled a chunk, when it has recipients to
    # send and that is over IDLE_AFTER_S: no worker running, or the queue is behind other campaigns.
    idle_for: float | None = None


def campaign_status(client: redis.Redis, campaign_id: str) -> CampaignStatus:
    fields = (
        keys.SPEC, keys.STATE, keys.CREATED_AT, keys.STARTED_AT, keys.FINISHED_AT, keys.RELEASE_AT,
        keys.PUBLISHING, keys.HELD_REASON, keys.LAST_ERROR, keys.LAST_ERROR_AT, keys.SEEN_AT, *_COUNTERS,
    )  # fmt: skip
    with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.campaign(campaign_id), fields)
        pipe.hgetall(keys.failures(campaign_id))
        pipe.hvals(keys.waiting(campaign_id))
        pipe.time()  # the clock the producer's publishing lease is set on
        values, failures, waiting, (seconds, micros) = pipe.execute()
    now = seconds + micros / 1e6
    row = dict(zip(fields, values, strict=True))
    if row[keys.SPEC] is None:
        raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
    spec = records.decode_spec(row[keys.SPEC])
    count = {name: int(row[name] or 0) for name in _COUNTERS}
    settled = sum(count[name] for name in (keys.SUBMITTED, keys.FAILED, keys.UNKNOWN, keys.CANCELLED))
    state = row[keys.STATE].decode()
    finished = state in FINISHED_STATES  # nothing waits any more
    lease = _float(row[keys.PUBLISHING])
    pending = max(count[keys.TOTAL] - settled, 0)
    seen_at = _float(row[keys.SEEN_AT]) or _float(row[keys.CREATED_AT]) or now
    release_at = _float(row[keys.RELEASE_AT])
    sendable = state in (CampaignState.QUEUED, CampaignState.RUNNING) or (
        state == CampaignState.SCHEDULED and release_at is not None and release_at <= now
    )
    waits = [] if finished else list(map(records.decode_waiting, waiting))
    idle = now - seen_at if pending and sendable and not waits and now - seen_at > IDLE_AFTER_S else None
    return CampaignStatus(
        campaign_id=campaign_id,
        name=spec.name,
        type=spec.type.value,
        state=state,
        pending=pending,
        failures={code.decode(): int(n) for code, n in failures.items()},
        created_at=_float(row[keys.CREATED_AT]),
        started_at=_float(row[keys.STARTED_AT]),
        finished_at=_float(row[keys.FINISHED_AT]),
        expires_at=spec.expires_at,
        waiting_for_window=sum(left for _, left in waits),
        window_opens_at=min((opens for opens, _ in waits), default=None),
        scheduled_for=spec.at,
        release_at=release_at,
        publishing=lease is not None and lease > now,
        publisher_lost=lease is not None and lease <= now and not finished,
        held_reason=_text(row[keys.HELD_REASON]) if state == CampaignState.HELD else None,
        last_error=_text(row[keys.LAST_ERROR]),
        last_error_at=_float(row[keys.LAST_ERROR_AT]),
        idle_for=idle,
        **count,
    )


def pause(client: redis.Redis, campaign_id: str) -> str:
    return _transition(client, campaign_id, CampaignState.PAUSED, _ACTIVE, "paused")


def resume(client: redis.Redis, campaign_id: str) -> str:
    # Workers set `running` again when they pick the next chunk up; `queued` is honest until then,
    # or `scheduled` for a campaign still held until its release.
    release_at = _float(client.hget(keys.campaign(campaign_id), keys.RELEASE_AT))  # type: ignore[arg-type]
    held = release_at is not None and release_at > time.time()
    target = CampaignState.SCHEDULED if held else CampaignState.QUEUED
    return _transition(client, campaign_id, target, (CampaignState.PAUSED,), "resumed")


def cancel(client: redis.Redis, campaign_id: str) -> str:
    sources = (*_ACTIVE, CampaignState.PAUSED)
    state = _transition(client, campaign_id, CampaignState.CANCELLED, sources, "cancelled")
    client.register_script(source("end_publishing"))(keys=[keys.campaign(campaign_id)], args=[time.time()])
    return state


def _transition(
    client: redis.Redis,
    campaign_id: str,
    target: CampaignState,
    sources: tuple[CampaignState, ...],
    doing: str,
) -> str:
    """Apply the move atomically; return the new state, or refuse saying which states allow `doing`."""
    script = client.register_script(source("transition"))
    previous = script(keys=[keys.campaign(campaign_id)], args=[target.value, *(s.value for s in sources)])
    if previous is None:
        raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
    state = previous.decode()
    if state == target.value or state in {s.value for s in sources}:
        return target.value
    allowed = " or ".join(s.value for s in sources)
    raise InputError(f"campaign {campaign_id!r} is {state}; only a campaign that is {allowed} can be {doing}")


def _float(raw: bytes | None) -> float | None:
    return float(raw) if raw is not None else None


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


def invalid_rows(client: redis.Redis, campaign_id: str, *, page: int = 1000) -> Iterator[InvalidRow]:
    """Each row skipped at publish, read a page at a time."""
    start = 0
    while batch := client.lrange(keys.invalid(campaign_id), start, start + page - 1):
        yield from (records.decode_invalid_row(entry) for entry in batch)  # type: ignore[arg-type]
        start += page


def account_rate_limit(client: redis.Redis, sid: str) -> float | None:
    """The account's limit in messages per second, shared by every worker; None when there is none."""
    raw: bytes | None = client.hget(keys.account_rate(sid), "limit")  # type: ignore[assignment]
    return float(raw) if raw else None


def set_account_rate_limit(client: redis.Redis, sid: str, raw: str) -> float | None:
    """`campaign limit SET`: messages per second, or `off`. Running workers follow at their next request."""
    if raw.strip().lower() == "off":
        client.delete(keys.account_rate(sid))
        return None
    try:
        limit = float(raw)
    except ValueError:
        raise InputError(f"limit {raw!r} is not a number of messages per second (or off)") from None
    if not (0 < limit < 1e9):  # also refuses nan and inf
        raise InputError(f"limit {raw!r} must be more than 0 messages per second (or off)")
    with client.pipeline(transaction=True) as tx:
        tx.hset(keys.account_rate(sid), "limit", repr(limit))
        # Urgent requests booked at the old pace may lie far ahead; bulk books only a moment ahead.
        tx.hdel(keys.account_rate(sid), "urgent_tat")
        tx.execute()
    return limit
