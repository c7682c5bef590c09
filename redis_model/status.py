"""A campaign's status as stored: its hash, failures by code, waiting jobs and delivery reports' traces and
times, read in one round trip."""

from __future__ import annotations

from collections.abc import Callable

import msgspec
import redis

from redis_model import callbacks, delivery, keys, records
from schemas.campaign import CampaignSpec
from schemas.delivery import trace_of
from schemas.message import Callbacks


class Counters(msgspec.Struct, frozen=True, kw_only=True):
    """The campaign hash's counters, each named as its field (0 when not written yet)."""

    total: int
    submitted: int
    failed: int
    unknown: int
    cancelled: int
    invalid: int
    duplicates: int
    suppressed: int
    segments: int
    retried: int
    resent: int
    republished: int
    jobs: int
    delivered: int  # messages whose final delivery report said delivered
    undelivered: int
    dlr_failed: int  # a final report of `failed`: Kaleyra did not send the message on
    resent_undelivered: int = 0  # recipients published again by `campaign resend --undelivered`


class StoredStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the campaign hash and its failures and waiting hashes hold, decoded, and Redis's clock."""

    spec: CampaignSpec
    state: str
    counters: Counters
    failures: dict[str, int]  # error code -> recipients failed with it
    traces: dict[str, int]  # status trace -> messages whose final delivery report gave it
    delivery_times: dict[str, int]  # bucket (upper bound, seconds, or "inf") -> messages delivered within it
    waiting: list[tuple[float, int]]  # (opens at, recipients left) of each job waiting for its window
    created_at: float | None
    started_at: float | None
    finished_at: float | None
    release_at: float | None
    publishing_lease: float | None  # while a producer reads the file: when its lease ends
    held_reason: str | None
    paused_reason: str | None  # paused by itself: why
    last_error: str | None
    last_error_at: float | None
    seen_at: float | None
    now: float  # Redis's clock, the one the publishing lease is set on
    callbacks: Callbacks | None = None  # with a callback url, once it made one


_COUNTERS = (
    keys.TOTAL, keys.SUBMITTED, keys.FAILED, keys.UNKNOWN, keys.CANCELLED, keys.INVALID, keys.DUPLICATES,
    keys.SUPPRESSED, keys.SEGMENTS, keys.RETRIED, keys.RESENT, keys.REPUBLISHED, keys.JOBS,
    keys.DELIVERED, keys.UNDELIVERED, keys.DLR_FAILED, keys.RESENT_UNDELIVERED,
)  # fmt: skip
_FIELDS = (
    keys.SPEC, keys.STATE, keys.CREATED_AT, keys.STARTED_AT, keys.FINISHED_AT, keys.RELEASE_AT,
    keys.PUBLISHING, keys.HELD_REASON, keys.PAUSED_REASON, keys.LAST_ERROR, keys.LAST_ERROR_AT, keys.SEEN_AT,
    *_COUNTERS,
    *callbacks.CALLBACK_FIELDS,
)  # fmt: skip


def read_status(client: redis.Redis, campaign_id: str) -> StoredStatus | None:
    """The campaign's stored status; None when there is no such campaign."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.campaign(campaign_id), _FIELDS)
        pipe.hgetall(keys.failures(campaign_id))
        pipe.hvals(keys.waiting(campaign_id))
        pipe.hgetall(keys.campaign_traces(campaign_id))
        pipe.hgetall(keys.campaign_delivery_times(campaign_id))
        pipe.time()
        values, failures, waiting, traces, times, (seconds, micros) = pipe.execute()
    row = dict(zip(_FIELDS, values, strict=True))
    if row[keys.SPEC] is None:
        return None
    return StoredStatus(
        spec=records.decode_spec(row[keys.SPEC]),
        state=row[keys.STATE].decode(),
        counters=Counters(**{name: int(row[name] or 0) for name in _COUNTERS}),
        failures={code.decode(): int(n) for code, n in failures.items()},
        waiting=list(map(records.decode_waiting, waiting)),
        traces=_by_name(traces, lambda code: trace_of(int(code))),
        delivery_times=_by_name(times, lambda code: delivery.delay_bucket(int(code))),
        created_at=_float(row[keys.CREATED_AT]),
        started_at=_float(row[keys.STARTED_AT]),
        finished_at=_float(row[keys.FINISHED_AT]),
        release_at=_float(row[keys.RELEASE_AT]),
        publishing_lease=_float(row[keys.PUBLISHING]),
        held_reason=_text(row[keys.HELD_REASON]),
        paused_reason=_text(row[keys.PAUSED_REASON]),
        last_error=_text(row[keys.LAST_ERROR]),
        last_error_at=_float(row[keys.LAST_ERROR_AT]),
        seen_at=_float(row[keys.SEEN_AT]),
        now=seconds + micros / 1e6,
        callbacks=callbacks.callbacks_of(row),
    )


def _by_name(stored: dict[bytes, bytes], name: Callable[[bytes], str]) -> dict[str, int]:
    """A hash of counts by stored code, by the name each code stands for (codes of one name added up)."""
    named: dict[str, int] = {}
    for code, count in stored.items():
        named[name(code)] = named.get(name(code), 0) + int(count)
    return named


def _float(raw: bytes | None) -> float | None:
    return float(raw) if raw is not None else None


def _text(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None
