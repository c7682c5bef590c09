"""`campaign report`: one row per recipient, streamed job by job from the ledger; memory is one job.

Each job's chunks are walked by offset through the outcome records. Recipients that
`campaign resend` published again are reported where they were sent last, in their new job.
Invalid, suppressed and duplicate rows follow, from the lists the producer kept. A duplicate row's
code is the line of the row it repeats (`line 12`), found as the rows go by: the producer
de-duplicates with a set of numbers alone, smaller than a map from number to line. Memory is one
job and the numbers that have duplicates.

A submitted recipient's delivery (its most final report, its trace and time) is read from its request's
delivery string: each string once, a page of requests in one pipelined round trip.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

import msgspec
import redis

from redis_model.delivery import split_message_id
from redis_model.jobs import job_count, read_job
from redis_model.outcomes import Deliveries, campaign_deliveries, chunk_outcome
from redis_model.skipped_rows import duplicate_recipients, invalid_rows, suppressed_recipients
from schemas.campaign import ChunkOutcome, Job, Outcome, Recipient
from schemas.masking import mask_number

COLUMNS = ("line", "number", "outcome", "code", "message_id", "delivery", "status_trace", "reported_at")
PENDING = "pending"
INVALID = "invalid"
SUPPRESSED = "suppressed"
DUPLICATE = "duplicate"
# A reply whose numbers could not be matched to the chunk's: which recipient got which id is not known.
UNATTRIBUTED = "UNATTRIBUTED"
# Requests whose delivery strings are read in one round trip (each at most 6 KB).
DELIVERY_PAGE = 100


class ReportRow(msgspec.Struct, frozen=True, array_like=True):
    line: int
    number: str
    outcome: str
    code: str = ""
    message_id: str = ""
    delivery: str = ""  # the most final report's status: delivered, undelivered, failed, sent; "" for none
    status_trace: str = ""
    reported_at: str = ""  # the report's time, ISO 8601 UTC


def report_rows(client: redis.Redis, campaign_id: str, *, full_numbers: bool = False) -> Iterator[ReportRow]:
    """Every row of the campaign's file as one row; numbers masked unless `full_numbers`."""
    show = (lambda n: n) if full_numbers else mask_number
    repeated = {recipient.to for recipient in duplicate_recipients(client, campaign_id)}
    first_lines: dict[str, int] = {}  # of the numbers in `repeated`
    for index in range(job_count(client, campaign_id)):
        job = read_job(client, campaign_id, index)
        if job is None:
            continue
        for row in _with_deliveries(client, campaign_id, _job_rows(client, campaign_id, job)):
            if repeated and row.number in repeated:
                first_lines[row.number] = row.line
            yield msgspec.structs.replace(row, number=show(row.number))
    for invalid in invalid_rows(client, campaign_id):
        yield ReportRow(invalid.line, show(invalid.value), INVALID, invalid.reason)
    for recipient in suppressed_recipients(client, campaign_id):
        if repeated and recipient.to in repeated:
            first_lines[recipient.to] = recipient.line
        yield ReportRow(recipient.line, show(recipient.to), SUPPRESSED)
    for duplicate in duplicate_recipients(client, campaign_id) if repeated else ():
        first = first_lines.get(duplicate.to)  # none: cancelled while publishing, before it was in a job
        yield ReportRow(duplicate.line, show(duplicate.to), DUPLICATE, f"line {first}" if first else "")


def _job_rows(client: redis.Redis, campaign_id: str, job: Job) -> Iterator[ReportRow]:
    recipients, offset = job.recipients, 0
    while offset < len(recipients):
        outcome = chunk_outcome(client, campaign_id, job.index, offset)
        if outcome is None:  # not settled yet: the rest of the job is pending
            yield from (ReportRow(r.line, r.to, PENDING) for r in recipients[offset:])
            return
        yield from _chunk_rows(recipients[offset : offset + outcome.size], outcome)
        offset += outcome.size


def _chunk_rows(chunk: list[Recipient], outcome: ChunkOutcome) -> Iterator[ReportRow]:
    if outcome.outcome is not Outcome.SUBMITTED:
        if not outcome.republished:  # else they are reported from the job that sent them again
            yield from (ReportRow(r.line, r.to, outcome.outcome.value, outcome.code) for r in chunk)
        return
    if not outcome.attributed:
        yield from (ReportRow(r.line, r.to, Outcome.UNKNOWN.value, UNATTRIBUTED) for r in chunk)
        return
    resent = set(outcome.resent)  # sent again by `resend --undelivered`: reported from their new job
    for index, (r, message_id) in enumerate(zip(chunk, outcome.full_message_ids(), strict=True)):
        if index in resent:
            continue
        if message_id:
            yield ReportRow(r.line, r.to, Outcome.SUBMITTED.value, "", message_id)
        elif not outcome.republished:  # dropped by the gateway
            yield ReportRow(r.line, r.to, Outcome.FAILED.value, outcome.code)


def _with_deliveries(client: redis.Redis, campaign_id: str, rows: Iterable[ReportRow]) -> Iterator[ReportRow]:
    """The rows with their delivery, read a page of requests at a time (a chunk's rows are together,
    so each request's string is read once)."""
    page: list[ReportRow] = []
    requests: set[str] = set()
    for row in rows:
        request_id = _request_of(row.message_id)
        if request_id and request_id not in requests and len(requests) == DELIVERY_PAGE:
            yield from _delivered(page, campaign_deliveries(client, campaign_id, requests))
            page, requests = [], set()
        page.append(row)
        if request_id:
            requests.add(request_id)
    if requests:
        yield from _delivered(page, campaign_deliveries(client, campaign_id, requests))
    else:
        yield from page


def _request_of(message_id: str) -> str:
    where = split_message_id(message_id) if message_id else None
    return where[0] if where else ""


def _delivered(page: list[ReportRow], deliveries: Deliveries) -> Iterator[ReportRow]:
    for row in page:
        found = deliveries.of(row.message_id) if row.message_id else None
        if found is None:
            yield row
        else:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(found.at))
            yield msgspec.structs.replace(
                row, delivery=found.status.word, status_trace=found.trace, reported_at=at
            )
