"""Publish a campaign: pick how it is written, then run its rows through the publishing stages.

Nothing is half-published: a refusal half-way through the rows (a personalised body missing a
value, a line that is not UTF-8) leaves nothing behind. Rows that can only be read once (stdin,
a generator) are staged (`writers.Staged`). A file is read twice (`publish_file`): a first pass
(`check_file`) finds any refusal, then each job goes to the workers as soon as it is written
(`writers.Progressive`). A dry run reads and counts everything the same way (segments included)
and publishes nothing (`writers.DryRun`). The stages are in `producer.publishing`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from datetime import datetime

import dramatiq
import redis

from producer import suppression
from producer.invalid import Allowance, Tally
from producer.numbers import InvalidNumber, NumberNormaliser
from producer.publishing.normalising import Row, fill_placeholders
from producer.publishing.pipeline import CampaignCounts, Publishing, PublishResult
from producer.publishing.writers import DryRun, Progressive, Staged, Writer
from producer.recipients import count_lines, open_recipients, read_through
from redis_model.publishing import Announcement, PublishingStore
from schemas.campaign import MARKETING_TYPES, SCHEDULE_LEAD_S, CampaignSpec, CampaignState, MessageType
from schemas.settings import Settings
from schemas.template import Template

__all__ = [
    "CampaignCounts",
    "PublishResult",
    "Row",
    "check_file",
    "publish_campaign",
    "publish_file",
    "release_at",
]


def publish_file(
    spec: CampaignSpec,
    path: str,
    *,
    client: redis.Redis,
    broker: dramatiq.Broker | None,
    settings: Settings,
    dry_run: bool = False,
    on_visible: Callable[[], None] | None = None,
    max_invalid: float | None = None,
) -> PublishResult:
    """Publish the recipients file at `path` (`-`: stdin). A regular file is read twice: through once
    for any refusal, then published with each job going to the workers as soon as it is written
    (`on_visible` is called when the first one is). Stdin, a pipe or a FIFO is read once, staged.
    `max_invalid` (the share of rows that may be invalid numbers) overrides CAMPAIGN_MAX_INVALID."""
    fields = Template(spec.body).fields
    # OTP: a single recipient anyway. os.path.isfile is False for "-", pipes and FIFOs.
    once = dry_run or spec.type is MessageType.OTP or not os.path.isfile(path)
    unquoted = not once and check_file(spec, path, settings, max_invalid=max_invalid)
    expected_rows = None if once else count_lines(path)
    with open_recipients(path, fields, unquoted=unquoted) as rows:
        return publish_campaign(
            spec, rows, client=client, broker=broker, settings=settings, dry_run=dry_run, checked=not once,
            on_visible=on_visible, expected_rows=expected_rows, max_invalid=max_invalid,
        )  # fmt: skip


def check_file(
    spec: CampaignSpec, path: str, settings: Settings, *, max_invalid: float | None = None
) -> bool:
    """Read all of the file at `path` as publishing would and raise what it would refuse; touches
    nothing. Without placeholders the reader's own refusals (a line that is not UTF-8, broken CSV
    or JSON) are all there are (`read_through`), and a list with more invalid numbers than allowed.
    True: a CSV file without placeholders or quotes."""
    template = Template(spec.body)
    normaliser, tally = NumberNormaliser(spec.prefix), Tally(spec.prefix)
    if not template.personalised:
        unquoted = read_through(path, lambda page: tally.count_page(normaliser, page.numbers))
    else:
        unquoted, unicode = False, spec.unicode or settings.default_unicode
        with open_recipients(path, template.fields) as rows:
            for line, raw, *values in rows:
                tally.rows += 1
                try:
                    normaliser.normalise(raw)
                except InvalidNumber as e:
                    tally.count_invalid(e)  # skipped, not refused
                    continue
                fill_placeholders(template, unicode, line, values[0] if values else ())
    tally.refuse_if_over(Allowance.of(settings, max_invalid))
    return unquoted


def publish_campaign(
    spec: CampaignSpec,
    rows: Iterable[Row],
    *,
    client: redis.Redis,
    broker: dramatiq.Broker | None,
    settings: Settings,
    dry_run: bool = False,
    checked: bool = False,
    on_visible: Callable[[], None] | None = None,
    expected_rows: int | None = None,
    max_invalid: float | None = None,
) -> PublishResult:
    """Read every row, write the jobs, commit the campaign and enqueue one message per job.

    `checked`: the same rows were read through by `check_file` without a refusal, so each job is
    enqueued as soon as it is written; otherwise all of them after the last row, and a list with
    more invalid numbers than `max_invalid` allows (default CAMPAIGN_MAX_INVALID) is refused then,
    before any of it is visible. A campaign cancelled meanwhile stops the reading. With `dry_run`,
    count what would be sent and publish nothing (`broker` may be None). `expected_rows`, about how
    many rows there are, sizes the jobs (`JOB_SHARE`); unknown, each job but the last holds
    CAMPAIGN_JOB_SIZE recipients.
    """
    store = PublishingStore(client, spec.campaign_id, retention_s=settings.retention_s)
    writer = _writer(
        spec, client, store, broker, settings, dry_run=dry_run, checked=checked, on_visible=on_visible
    )
    # Looked up only for marketing, and only when the account lists anyone; a list written by an
    # older version is refused here, before anything is written (`suppression.in_use`).
    suppressing = spec.type in MARKETING_TYPES and suppression.in_use(client, settings.sid)
    allowance = None if checked else Allowance.of(settings, max_invalid)
    publishing = Publishing(
        spec, settings, store=store, writer=writer, suppressing=suppressing, expected_rows=expected_rows,
        allowance=allowance,
    )  # fmt: skip
    try:
        publishing.add_all(rows)
        result = publishing.commit()
    except BaseException as e:
        writer.abandon(e, publishing.counted())
        raise
    writer.release(result.jobs)
    return result


def _writer(
    spec: CampaignSpec,
    client: redis.Redis,
    store: PublishingStore,
    broker: dramatiq.Broker | None,
    settings: Settings,
    *,
    dry_run: bool,
    checked: bool,
    on_visible: Callable[[], None] | None,
) -> Writer:
    """The one choice of how the campaign is written: a dry run, progressive (checked rows) or staged."""
    if dry_run:
        return DryRun(store)
    state = CampaignState.SCHEDULED if spec.at else CampaignState.QUEUED
    announcement = Announcement(spec, state, release_at(spec.at) if spec.at else None)
    if checked:
        return Progressive(client, store, announcement, broker, settings.job_size, on_visible)
    return Staged(store, announcement, broker, settings.job_size)


def release_at(at: str) -> float:
    """When a campaign scheduled for `at` starts going to Kaleyra (Unix time)."""
    return datetime.fromisoformat(at).timestamp() - SCHEDULE_LEAD_S
