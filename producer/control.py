"""Read, steer and purge a published campaign (status, pause, resume, cancel); the account's limit."""

from __future__ import annotations

import time
from collections.abc import Iterator

import msgspec
import redis

from redis_model import account_limit, skipped_rows
from redis_model.status import StoredStatus, read_status
from redis_model.steering import CampaignSteering, RetentionApplied, purge_campaign
from redis_model.steering import apply_retention as _apply_retention
from schemas.campaign import FINISHED_STATES, CampaignState, InvalidRow
from schemas.errors import InputError, UnknownCampaignError
from schemas.message import Callbacks

_ACTIVE = (CampaignState.QUEUED, CampaignState.SCHEDULED, CampaignState.RUNNING, CampaignState.HELD)
# A campaign with recipients to send that no worker has looked at for this long: status says so.
# Twice the longest a waiting job (quiet hours, a hold) stays away before a worker looks again.
IDLE_AFTER_S = 120.0


class DailyCap(msgspec.Struct, frozen=True, kw_only=True):
    """The account's daily cap (`campaign limit --daily`) and what today (UTC) used of it."""

    cap: int
    used: int
    resets_at: float  # the next UTC midnight (Unix seconds): the cap's use starts again from 0


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
    # State `paused` by itself: its failures passed CAMPAIGN_FAILURE_PAUSE of the recipients attempted.
    paused_reason: str | None = None
    last_error: str | None = None  # the last gateway error a chunk met (`code: message`), and when
    last_error_at: float | None = None
    # Seconds since a worker last took one of its jobs or settled a chunk, when it has recipients to
    # send and that is over IDLE_AFTER_S: no worker running, or the queue is behind other campaigns.
    idle_for: float | None = None
    # Delivery reports: messages whose final report said delivered, undelivered or failed (Kaleyra did
    # not send it on), and those submitted with no final report yet.
    delivered: int = 0
    undelivered: int = 0
    dlr_failed: int = 0
    delivery_pending: int = 0
    traces: dict[str, int] = {}  # status trace -> messages whose final report gave it, most first
    # Time from submission to delivery: half (nine in ten) of the delivered messages took at most this
    # (seconds, the upper bound of the bucket counted in; None before any, or past a day).
    delivery_p50_s: float | None = None
    delivery_p90_s: float | None = None
    # Submitted recipients whose final report was undelivered for a temporary reason, published again by
    # `campaign resend --undelivered` (from then on counted, and reported, by their new message).
    resent_undelivered: int = 0
    # With a callback url: the callbacks made, sent, failed and pending, the attempts and the last error.
    callbacks: Callbacks | None = None
    # The account's daily cap, when it has one: its sending stops for the day once `used` reaches `cap`.
    daily_cap: DailyCap | None = None


def campaign_status(client: redis.Redis, campaign_id: str, *, sid: str = "") -> CampaignStatus:
    """The campaign's status; with the account's `sid`, its daily cap's use too."""
    stored = read_status(client, campaign_id)
    if stored is None:
        raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
    count = stored.counters
    settled = count.submitted + count.failed + count.unknown + count.cancelled
    state, now, spec = stored.state, stored.now, stored.spec
    finished = state in FINISHED_STATES  # nothing waits any more
    lease = stored.publishing_lease
    pending = max(count.total - settled, 0)
    waits = [] if finished else stored.waiting
    return CampaignStatus(
        campaign_id=campaign_id,
        name=spec.name,
        type=spec.type.value,
        state=state,
        pending=pending,
        failures=stored.failures,
        created_at=stored.created_at,
        started_at=stored.started_at,
        finished_at=stored.finished_at,
        expires_at=spec.expires_at,
        waiting_for_window=sum(left for _, left in waits),
        window_opens_at=min((opens for opens, _ in waits), default=None),
        scheduled_for=spec.at,
        release_at=stored.release_at,
        publishing=lease is not None and lease > now,
        publisher_lost=lease is not None and lease <= now and not finished,
        held_reason=stored.held_reason if state == CampaignState.HELD else None,
        paused_reason=stored.paused_reason if state == CampaignState.PAUSED else None,
        last_error=stored.last_error,
        last_error_at=stored.last_error_at,
        idle_for=None if waits or not pending else _idle_for(stored),
        delivery_pending=max(count.submitted - count.delivered - count.undelivered - count.dlr_failed, 0),
        traces=dict(sorted(stored.traces.items(), key=lambda item: (-item[1], item[0]))),
        delivery_p50_s=_delay_percentile(stored.delivery_times, 0.5),
        delivery_p90_s=_delay_percentile(stored.delivery_times, 0.9),
        callbacks=stored.callbacks,
        daily_cap=account_daily_cap(client, sid) if sid else None,
        **msgspec.structs.asdict(count),
    )


def _delay_percentile(buckets: dict[str, int], share: float) -> float | None:
    """The upper bound (seconds) of the bucket where `share` of the delivered messages is reached."""
    total = sum(buckets.values())
    if not total:
        return None
    counted = 0
    for bound in sorted(buckets, key=lambda b: float("inf") if b == "inf" else float(b)):
        counted += buckets[bound]
        if counted >= share * total:
            return None if bound == "inf" else float(bound)
    return None


def _idle_for(stored: StoredStatus) -> float | None:
    """How long no worker has looked at a campaign with recipients to send, when that is over IDLE_AFTER_S."""
    now = stored.now
    seen_at = stored.seen_at or stored.created_at or now
    release_at = stored.release_at
    sendable = stored.state in (CampaignState.QUEUED, CampaignState.RUNNING) or (
        stored.state == CampaignState.SCHEDULED and release_at is not None and release_at <= now
    )
    return now - seen_at if sendable and now - seen_at > IDLE_AFTER_S else None


def pause(client: redis.Redis, campaign_id: str, *, retention_s: float) -> str:
    steering = CampaignSteering(client, retention_s=retention_s)
    return _transition(steering, campaign_id, CampaignState.PAUSED, _ACTIVE, "paused")


def resume(client: redis.Redis, campaign_id: str, *, retention_s: float) -> str:
    # Workers set `running` again when they pick the next chunk up; `queued` is honest until then,
    # or `scheduled` for a campaign still held until its release.
    steering = CampaignSteering(client, retention_s=retention_s)
    release_at = steering.release_at(campaign_id)
    held = release_at is not None and release_at > time.time()
    target = CampaignState.SCHEDULED if held else CampaignState.QUEUED
    return _transition(steering, campaign_id, target, (CampaignState.PAUSED,), "resumed")


def cancel(client: redis.Redis, campaign_id: str, *, retention_s: float) -> str:
    """Cancel the campaign; its keys expire `retention_s` later."""
    steering = CampaignSteering(client, retention_s=retention_s)
    sources = (*_ACTIVE, CampaignState.PAUSED)
    state = _transition(steering, campaign_id, CampaignState.CANCELLED, sources, "cancelled")
    steering.end_publishing(campaign_id, time.time())
    return state


def purge(client: redis.Redis, campaign_id: str, *, force: bool = False) -> str:
    """Remove a finished campaign's keys and index entry now; returns the state it had. Refuses one
    not finished, and a cancelled one whose workers still count recipients cancelled unless `force`."""
    found = purge_campaign(client, campaign_id, force=force)
    if found.verdict == "unknown":
        raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
    if found.verdict == "unfinished":
        raise InputError(
            f"campaign {campaign_id!r} is {found.state}; only a completed, failed or cancelled campaign "
            "can be purged (cancel it first)"
        )
    if found.verdict == "settling":
        raise InputError(
            f"campaign {campaign_id!r} is cancelled with {found.pending} recipients its workers have yet "
            "to count cancelled; wait for them, or purge with --force"
        )
    return found.state


def apply_retention(client: redis.Redis, *, retention_s: float) -> RetentionApplied:
    """`campaign purge --apply-retention`: every finished campaign left without an expiry (finished
    before retention existed) expires `retention_s` after it finished; one already past that goes now.
    Never a campaign queued, scheduled, running, paused or held, nor a cancelled one still settling."""
    return _apply_retention(client, retention_s=retention_s)


def _transition(
    steering: CampaignSteering,
    campaign_id: str,
    target: CampaignState,
    sources: tuple[CampaignState, ...],
    doing: str,
) -> str:
    """Apply the move atomically; return the new state, or refuse saying which states allow `doing`."""
    state = steering.transition(campaign_id, target, sources)
    if state is None:
        raise UnknownCampaignError(f"no campaign {campaign_id!r} in Redis")
    if state == target.value or state in {s.value for s in sources}:
        return target.value
    allowed = " or ".join(s.value for s in sources)
    raise InputError(f"campaign {campaign_id!r} is {state}; only a campaign that is {allowed} can be {doing}")


def invalid_rows(client: redis.Redis, campaign_id: str, *, page: int = 1000) -> Iterator[InvalidRow]:
    """Each row skipped at publish, read a page at a time."""
    return skipped_rows.invalid_rows(client, campaign_id, page=page)


def account_rate_limit(client: redis.Redis, sid: str) -> float | None:
    """The account's limit in messages per second, shared by every worker; None when there is none."""
    return account_limit.read_limit(client, sid)


def account_daily_cap(client: redis.Redis, sid: str) -> DailyCap | None:
    """The account's daily cap and today's use of it; None when it has none."""
    use = account_limit.daily_use(client, sid)
    return None if use is None else DailyCap(cap=use.cap, used=use.used, resets_at=use.resets_at)


def set_account_daily_cap(client: redis.Redis, sid: str, raw: str) -> int | None:
    """`campaign limit --daily N`: the most messages the account sends a UTC day, or `off`. Running
    workers follow at their next request; what today sent counts against a new cap."""
    if raw.strip().lower() == "off":
        account_limit.write_daily_cap(client, sid, None)
        return None
    if not raw.strip().isdecimal() or not 0 < int(raw) < 10**12:
        raise InputError(f"daily cap {raw!r} is not a whole number of messages, more than 0 (or off)")
    account_limit.write_daily_cap(client, sid, int(raw))
    return int(raw)


def set_account_rate_limit(client: redis.Redis, sid: str, raw: str) -> float | None:
    """`campaign limit SET`: messages per second, or `off`. Running workers follow at their next request."""
    if raw.strip().lower() == "off":
        account_limit.remove_limit(client, sid)
        return None
    try:
        limit = float(raw)
    except ValueError:
        raise InputError(f"limit {raw!r} is not a number of messages per second (or off)") from None
    if not (0 < limit < 1e9):  # also refuses nan and inf
        raise InputError(f"limit {raw!r} must be more than 0 messages per second (or off)")
    account_limit.write_limit(client, sid, limit)
    return limit
