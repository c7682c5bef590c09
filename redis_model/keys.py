"""Every Redis key, queue and actor name, in one place.

A campaign's keys share the hash tag `{id}`, an account's `{sid}`. That is not enough for a Redis
Cluster, which is not supported: the settlement scripts also write the request's delivery string and
the reconciliation index, and the intake's and the delivery reports' scripts span lanes and requests.
"""

from __future__ import annotations

from typing import NamedTuple


class Lane(NamedTuple):
    """A dramatiq queue and actor of its own, so that OTP and TXN never wait behind a bulk campaign."""

    queue: str
    actor: str
    priority: int  # dramatiq's: lower runs first when a worker thread frees up
    urgent: bool  # jumps the account's rate-limit backlog


OTP_LANE = Lane("campaigns.otp", "send_otp_job", 0, True)
TXN_LANE = Lane("campaigns.txn", "send_txn_job", 10, True)
BULK_LANE = Lane("campaigns", "send_job", 100, False)
LANES = (OTP_LANE, TXN_LANE, BULK_LANE)
# dramatiq's sorted set of live workers' broker ids: a worker is up once it is there.
DRAMATIQ_HEARTBEATS = "dramatiq:__heartbeats__"


# dramatiq's Redis broker keeps a queue in these keys (its `dispatch.lua`); read only, for the metrics.
def dramatiq_ready(queue: str) -> str:
    """List: the ids of the queue's messages waiting for a worker."""
    return f"dramatiq:{queue}"


def dramatiq_messages(queue: str) -> str:
    """Hash: id -> message, of every message of the queue not acknowledged: waiting, or fetched by a
    worker (its id then in that worker's ack set, no longer in the list)."""
    return f"dramatiq:{queue}.msgs"


def dramatiq_delayed(queue: str) -> str:
    """Hash: id -> message, of every delayed message of the queue (a retry's back-off, a job that comes
    back later): in the delay queue's list, or held by a worker until its time."""
    return f"dramatiq:{queue}.DQ.msgs"


def dramatiq_dead(queue: str) -> str:
    """Sorted set: the ids of the queue's dead-lettered messages (out of retries), by when."""
    return f"dramatiq:{queue}.XQ"


def lane_of(message_type: str) -> Lane:
    return {"OTP": OTP_LANE, "TXN": TXN_LANE}.get(message_type, BULK_LANE)


# Fields of the campaign hash.
SPEC = "spec"
STATE = "state"
TOTAL = "total"
JOBS = "jobs"
SUBMITTED = "submitted"
FAILED = "failed"
UNKNOWN = "unknown"
CANCELLED = "cancelled"
INVALID = "invalid"
DUPLICATES = "duplicates"
SUPPRESSED = "suppressed"
SEGMENTS = "segments"
RETRIED = "retried"
RESENT = "resent"
REPUBLISHED = "republished"
RESENT_UNDELIVERED = "resent_undelivered"  # recipients published again by `resend --undelivered`
CREATED_AT = "created_at"
RELEASE_AT = "release_at"  # a scheduled campaign: when its chunks start going to Kaleyra
STARTED_AT = "started_at"
FINISHED_AT = "finished_at"
HELD_REASON = "held_reason"  # while the account is held: why
PAUSED_REASON = "paused_reason"  # paused by itself (its failures passed CAMPAIGN_FAILURE_PAUSE): why
# Where the failures' share that pauses a campaign counts from: its attempted and failed recipients when
# it last paused itself.
GUARD_FROM_ATTEMPTED, GUARD_FROM_FAILED = "guard_from_attempted", "guard_from_failed"
LAST_ERROR = "last_error"  # the last gateway error a chunk of the campaign met: `code: message`
LAST_ERROR_AT = "last_error_at"
SEEN_AT = "seen_at"  # the last time a worker took a job of the campaign or settled a chunk
# While the producer is still reading the file: its lease (Unix time), renewed as it writes jobs.
PUBLISHING = "publishing"


# Sorted set: every campaign's id, scored by its creation (Unix time): `list_campaigns` reads it
# newest first rather than scanning keys. An id whose campaign expired is removed as the next
# campaign is announced, `campaign purge` removes its campaign's.
CAMPAIGNS_BY_CREATION = "campaigns:by_creation"
# The campaigns' census for the metrics (`redis_model.census`), shared by every exporter: its last walk,
# and who is walking now.
CAMPAIGN_CENSUS = "metrics:census"
CAMPAIGN_CENSUS_WALK = "metrics:census:walk"
# `campaign serve`'s API keys. Hash: a key's SHA-256 (hex) -> its msgpack-encoded `ApiKey` (never the key).
API_KEYS_BY_DIGEST = "api_keys:by_digest"
# Hash: a key's name -> its SHA-256: names are unique, and `revoke NAME` finds the key in one read.
API_KEYS_BY_NAME = "api_keys:by_name"


def signed_out(session_id: str) -> str:
    """String: a status pages' session signed out before its cookie's end, kept until that end: the cookie
    (signed, 12 hours) no longer opens the pages, wherever it was copied to."""
    return f"ui:signed_out:{session_id}"


def campaign(campaign_id: str) -> str:
    """Hash: the spec, the state and the counters."""
    return f"campaign:{{{campaign_id}}}"


def is_campaign(key: str) -> bool:
    """Whether `key` is a campaign's hash (a callback's owner is a campaign's or a single message's)."""
    return key.startswith("campaign:{") and key.endswith("}")


def jobs(campaign_id: str) -> str:
    """Hash: job index -> msgspec-encoded `Job`."""
    return f"campaign:{{{campaign_id}}}:jobs"


def progress(campaign_id: str) -> str:
    """Hash: job index -> chunks of that job already settled."""
    return f"campaign:{{{campaign_id}}}:progress"


def claims(campaign_id: str) -> str:
    """Hash: job index -> `owner|deadline ms|offset|size` of the chunk a worker is sending now."""
    return f"campaign:{{{campaign_id}}}:claims"


def outcomes(campaign_id: str) -> str:
    """Hash: `job:offset` -> JSON `ChunkOutcome` of each settled chunk, message ids included."""
    return f"campaign:{{{campaign_id}}}:outcomes"


def purged_outcomes(campaign_id: str) -> str:
    """Hash: a purged campaign's `outcomes`, renamed by `campaign purge` and read to remove its requests'
    delivery keys, then removed (a day at most, should the purge die before)."""
    return f"campaign:{{{campaign_id}}}:purged_outcomes"


def outcome_field(job: int, offset: int) -> str:
    return f"{job}:{offset}"


def resend_lock(campaign_id: str) -> str:
    """String: held while `campaign resend` republishes, so two resends never pick the same chunk."""
    return f"campaign:{{{campaign_id}}}:resend-lock"


def seen(campaign_id: str) -> str:
    """Set: normalised numbers met while publishing, for de-duplication; dropped after."""
    return f"campaign:{{{campaign_id}}}:seen"


def invalid(campaign_id: str) -> str:
    """List: a msgpack-encoded `InvalidRow` for each row skipped at publish."""
    return f"campaign:{{{campaign_id}}}:invalid"


def suppressed(campaign_id: str) -> str:
    """List: a msgpack-encoded `Recipient` (number and line) for each recipient left out because
    the account's suppression list holds its number."""
    return f"campaign:{{{campaign_id}}}:suppressed"


def duplicates(campaign_id: str) -> str:
    """List: a msgpack-encoded `Recipient` (number and line, no field values) for each row left out
    because an earlier row has its number; the report finds that row's line."""
    return f"campaign:{{{campaign_id}}}:duplicates"


def waiting(campaign_id: str) -> str:
    """Hash: job index -> `opens at (Unix time)|recipients left` of a job waiting for its sending window."""
    return f"campaign:{{{campaign_id}}}:waiting"


def failures(campaign_id: str) -> str:
    """Hash: error code -> recipients failed with it."""
    return f"campaign:{{{campaign_id}}}:failures"


def account_rate(sid: str) -> str:
    """Hash: `limit` (messages per second for the whole account, every worker on every host);
    `tat` and `urgent_tat`, the times (Redis clock, seconds) from which the next bulk and urgent
    request may go; the adaptive pace (`pace`, `pace_at`, `step`, `ceiling`, `cut_at`); and the
    last second or two's traffic (`seen_from`, `seen`, `seen_rate`, `requests`, `pushbacks`,
    `prev_requests`, `prev_pushbacks`); `daily`, the most messages it may send a UTC day (none: no
    cap). Written only by `redis_model.account_rate`'s scripts and `campaign limit`."""
    return f"account:{{{sid}}}:rate"


def account_daily(sid: str) -> str:
    """Hash: UTC day (days since 1970-01-01) -> messages booked on the account's line that day, while it
    has a daily cap; the last 31 days are kept."""
    return f"account:{{{sid}}}:daily"


def account_hold(sid: str) -> str:
    """Hash, present while the account is held: `code` (UNAUTHORIZED, CONNECT ...), `reason`,
    `since`, `probe_at` (when a worker may next ask the gateway), `key` (a fingerprint of the API
    key the gateway refused, never the key)."""
    return f"account:{{{sid or 'default'}}}:hold"


def suppression_list(sid: str) -> str:
    """Set: E.164 numbers the account's marketing never sends to (`campaign suppress`); checked at
    publish and again as each chunk is sent."""
    return f"account:{{{sid or 'default'}}}:suppressed"


def suppression_import(sid: str, token: str) -> str:
    """Set: the numbers of one `campaign suppress import` while it reads its file, merged into the
    list at the end and then deleted (the list's hash tag: one slot with it)."""
    return f"{suppression_list(sid)}:import:{token}"


def suppression_format(sid: str) -> str:
    """String: the format of the account's suppression list, "2" once its numbers are all read as
    libphonenumber reads them. A list without it was written by an older version, some of whose
    numbers are in forms never produced now; `campaign suppress renormalise` adds their current
    forms and sets it."""
    return f"account:{{{sid or 'default'}}}:suppressed:format"


def all_keys(campaign_id: str) -> tuple[str, ...]:
    """Every key of the campaign: what `campaign purge` unlinks."""
    return (*retained_keys(campaign_id), resend_lock(campaign_id))


def retained_keys(campaign_id: str) -> tuple[str, ...]:
    """The keys that expire `CAMPAIGN_RETENTION` after the campaign finishes, its hash first: every key
    of the campaign but the resend lock, which expires on its own within minutes."""
    return (
        campaign(campaign_id),
        jobs(campaign_id),
        progress(campaign_id),
        claims(campaign_id),
        outcomes(campaign_id),
        seen(campaign_id),
        invalid(campaign_id),
        suppressed(campaign_id),
        duplicates(campaign_id),
        waiting(campaign_id),
        failures(campaign_id),
        campaign_traces(campaign_id),
        campaign_delivery_times(campaign_id),
    )


# Single messages (`send_message`, `POST /v1/messages`): one Redis stream per lane, read by every
# worker process through one consumer group; a message's id is its lane and its stream entry's id.
MESSAGE_LANES = {OTP_LANE.queue: "otp", TXN_LANE.queue: "txn", BULK_LANE.queue: "bulk"}
MESSAGE_GROUP = "workers"
MESSAGE_FIELD = "m"  # a stream entry's one field: the `SingleMessage`
# The fields of a single message's status hash (`message`).
STATUS, MESSAGE_ID, CODE, REFERENCE, AT, OWNER = "status", "message_id", "code", "reference", "at", "owner"
ATTEMPTS = "attempts"  # requests of the message the gateway refused with a transient error, retries spent
IDEMPOTENCY_LIFETIME_S = 86_400  # an Idempotency-Key is remembered for 24 hours


def message_stream(lane: Lane) -> str:
    """Stream: one entry per queued single message of the lane, field `m` its `SingleMessage`
    (msgpack); deleted once the message is settled."""
    return f"messages:{MESSAGE_LANES[lane.queue]}"


def message_id(lane: Lane, entry_id: str) -> str:
    """A single message's public id: `txn-1765000000000-0` (its lane's short name, its entry's id)."""
    return f"{MESSAGE_LANES[lane.queue]}-{entry_id}"


_MAX_ENTRY_PART = 2**64 - 1  # a stream entry id is two unsigned 64-bit numbers


def message_entry(message_id: str) -> tuple[Lane, str] | None:
    """The lane and stream entry of a message id; None for what is no such id."""
    short, _, entry = message_id.partition("-")
    lane = next((lane for lane in LANES if MESSAGE_LANES[lane.queue] == short), None)
    ms, _, seq = entry.partition("-")
    if lane is None or not (ms.isdigit() and seq.isdigit() and ms.isascii() and seq.isascii()):
        return None
    if any(len(part) > 20 or int(part) > _MAX_ENTRY_PART for part in (ms, seq)):  # Redis would refuse it
        return None
    return lane, entry


def message(message_id: str) -> str:
    """Hash, from when a worker takes the message: `status` (a `MessageStatus`), `message_id`
    (Kaleyra's), `code`, `reference`, `at` (Unix seconds), `owner` (while sending: the worker and
    its lease's end, ms), `attempts` (requests refused with a transient error: given back to be sent
    again, up to `CAMPAIGN_JOB_MAX_RETRIES`). Expires `CAMPAIGN_RETENTION` after the message settles."""
    return f"message:{message_id}"


def idempotency(scope: str, key_digest: str) -> str:
    """String: `message id|digest of the request`, for 24 hours after a request with this
    `Idempotency-Key` (its SHA-256, hex: the key itself is never stored). `scope`: the API key's id
    for the HTTP service, "" for the Python API."""
    return f"idempotency:{scope}:{key_digest}"


# Delivery reports. Kaleyra's message id is its request's id, ":" and the node's position in the request.
DELIVERED, UNDELIVERED, DLR_FAILED = "delivered", "undelivered", "dlr_failed"  # a campaign's counters of them
DELIVERY_PREFIX = "dlr:"


def delivery(request_id: str) -> str:
    """String, from when a worker settles the request: a header (`redis_model.delivery`: a campaign's
    chunk or single messages, when it was submitted), then a record a node, six bytes, at the node's
    position: the most final report of it. Expires `CAMPAIGN_RETENTION` after the request settled."""
    return f"{DELIVERY_PREFIX}{request_id}"


def request_of(delivery_key: str) -> str:
    """The request id of a `delivery` key (as the early reports' index holds them)."""
    return delivery_key.removeprefix(DELIVERY_PREFIX)


def early_reports(request_id: str) -> str:
    """Hash: node position -> its most final report, for reports that came before their request was
    settled (and `since`: the first one's arrival); recorded, then deleted, once it is (or dropped an
    hour after the first, `redis_model.delivery.EARLY_LIFETIME_S`)."""
    return f"dlr:early:{request_id}"


# Sorted set: the `delivery` keys of requests with early reports, by when to look at each next.
EARLY_REPORTS = "dlr:early"
# Sorted set: the ids of settled requests whose nodes may still lack a final report, by when the
# poller (`worker.reconcile`) asks Kaleyra's status query for them next: `CAMPAIGN_DLR_POLL_AFTER`
# after their settlement, then later and later; removed once every node is final, or given up.
UNREPORTED = "dlr:unreported"


def campaign_traces(campaign_id: str) -> str:
    """Hash: status trace (its code, `schemas.delivery.trace_code`) -> messages of the campaign whose
    final report gave it."""
    return f"campaign:{{{campaign_id}}}:traces"


def campaign_delivery_times(campaign_id: str) -> str:
    """Hash: a bucket of seconds (`redis_model.delivery.delay_bucket_code`: from 1, the position of its
    upper bound in DELAY_BUCKETS_S) -> messages of the campaign delivered within it of their request's
    submission."""
    return f"campaign:{{{campaign_id}}}:delivery_times"


# Callbacks to the producer (`redis_model.callbacks`): an outbox of POSTs to make, each of one owner's
# events (a campaign's, or a single message's), until its receiver answers 2xx or the attempts run out.
# Hash: callback id -> the callback as stored (`redis_model.callbacks.StoredCallback`, JSON).
CALLBACKS = "callbacks"
# Sorted set: callback ids by when to attempt each next (a claimed one: when its claim ends).
CALLBACKS_DUE = "callbacks:due"
# String: the last callback id given out.
CALLBACK_IDS = "callbacks:ids"
# Sorted set: ids of campaigns with a callback url whose end is still to be told, by when to look next.
CALLBACK_CAMPAIGNS = "callbacks:campaigns"
# The owner's hash (a campaign's, a single message's) counts its callbacks: made, sent (answered 2xx),
# failed (given up), attempts made; and keeps the last attempt's time and the last failure's reason.
CALLBACK_URL = "callback_url"  # a campaign's, in its hash: where its events go
CALLBACKS_MADE, CALLBACKS_SENT, CALLBACKS_FAILED = "callbacks", "callbacks_sent", "callbacks_failed"
CALLBACK_ATTEMPTS, CALLBACK_ERROR, CALLBACK_AT = "callback_attempts", "callback_error", "callback_at"


def callback_targets(request_id: str) -> str:
    """Hash: node position -> where its delivery report is told (`redis_model.callbacks`: the single
    message's url, id, reference and hash), for a request of single messages with a callback url.
    Expires with the request's delivery string."""
    return f"dlr:callbacks:{request_id}"
