"""`campaign report`: one row per recipient, streamed job by job from the ledger; memory is one job.

Each job's chunks are walked by offset through the outcome records. Recipients that
`campaign resend` published again are reported where they were sent last, in their new job.
Invalid, suppressed and duplicate rows follow, from the lists the producer kept. A duplicate row's
code is the line of the row it repeats (`line 12`), found as the rows go by: the producer
de-duplicates with a set of numbers alone, smaller than a map from number to line. Memory is one
job and the numbers that have duplicates.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import redis

from redis_model.jobs import job_count, read_job
from redis_model.outcomes import chunk_outcome
from redis_model.skipped_rows import duplicate_recipients, invalid_rows, suppressed_recipients
from schemas.campaign import ChunkOutcome, Job, Outcome, Recipient
from schemas.masking import mask_number

COLUMNS = ("line", "number", "outcome", "code", "message_id")
PENDING = "pending"
INVALID = "invalid"
SUPPRESSED = "suppressed"
DUPLICATE = "duplicate"
# A reply whose numbers could not be matched to the chunk's: which recipient got which id is not known.
UNATTRIBUTED = "UNATTRIBUTED"


class ReportRow(msgspec.Struct, frozen=True, array_like=True):
    line: int
    number: str
    outcome: str
    code: str = ""
    message_id: str = ""


def report_rows(client: redis.Redis, campaign_id: str, *, full_numbers: bool = False) -> Iterator[ReportRow]:
    """Every row of the campaign's file as one row; numbers masked unless `full_numbers`."""
    show = (lambda n: n) if full_numbers else mask_number
    repeated = {recipient.to for recipient in duplicate_recipients(client, campaign_id)}
    first_lines: dict[str, int] = {}  # of the numbers in `repeated`
    for index in range(job_count(client, campaign_id)):
        job = read_job(client, campaign_id, index)
        if job is None:
            continue
        for row in _job_rows(client, campaign_id, job):
            if repeated and row.number in repeated:
                first_lines[row.number] = row.line
            yield ReportRow(row.line, show(row.number), row.outcome, row.code, row.message_id)
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
    for r, message_id in zip(chunk, outcome.full_message_ids(), strict=True):
        if message_id:
            yield ReportRow(r.line, r.to, Outcome.SUBMITTED.value, "", message_id)
        elif not outcome.republished:  # dropped by the gateway
            yield ReportRow(r.line, r.to, Outcome.FAILED.value, outcome.code)
