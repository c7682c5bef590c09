"""Publish a campaign: stream the rows into jobs in Redis and enqueue one message per job.

Nothing is half-published: a refusal half-way through the rows (a personalised body missing a
value, a line that is not UTF-8) leaves nothing behind. Rows that can only be read once (stdin,
a generator) are staged, and the jobs become visible to workers after the last row. A file is
read twice (`publish_file`): a first pass finds any refusal, then each job goes to the workers
as soon as it is written, so sending starts within a page of the file; the campaign's
`publishing` lease keeps it from completing before the last row. Duplicates are found in a set
of this process's (about 65 bytes a number) up to `SEEN_IN_MEMORY_MAX` numbers, then in a Redis
set, so the producer's memory stays bounded whatever the file's size. A duplicate row is recorded
(its number and line) but not the line it repeats, which would take a number -> line map in place
of the set: the report finds that line as it streams the rows. Numbers on the account's
suppression list are left out and counted. A dry run reads and counts everything the same way
(segments included) and publishes nothing.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

import dramatiq
import msgspec
import redis
from redis.typing import EncodableT, FieldT

from producer import suppression
from producer.control import cancel
from producer.invalid import Allowance, Tally, printable
from producer.job_queue import enqueue_jobs
from producer.numbers import InvalidNumber, NumberNormaliser
from producer.recipients import PagedRows, count_lines, open_recipients, read_through
from producer.segments import encoding_of, segments
from producer.timezones import zones_of
from redis_model import keys, records
from redis_model.scripts import joined_numbers, source
from schemas.campaign import (
    MARKETING_TYPES,
    SCHEDULE_LEAD_S,
    CampaignSpec,
    CampaignState,
    InvalidRow,
    Job,
    MessageType,
    Recipient,
)
from schemas.errors import InputError, SpecError
from schemas.gsm7 import GSM7, needs_ucs2
from schemas.kaleyra import MAX_BODY_CHARS
from schemas.settings import Settings
from schemas.template import Template

SHOWN_INVALID_ROWS = 20
# A job holds at most this share of the recipients before it or after it (and never more than
# CAMPAIGN_JOB_SIZE): the first jobs are small, so that many threads start on a campaign at once,
# and so are the last, so that they end it together rather than a few of them sending its last
# large jobs while the others wait (equal jobs left threads idle at a campaign's end, and a small
# campaign in few large jobs left most threads idle throughout).
JOB_SHARE = 1 / 16
# Duplicates are found in memory up to this many numbers (about 130 MB), in Redis past them: in
# memory the look-up is far cheaper than Redis's, and it costs Redis nothing.
SEEN_IN_MEMORY_MAX = 2_000_000

# A producer publishing jobs as it reads renews this lease with each job it publishes (with each page
# of rows, while it publishes none); status shows one that let it lapse (it died mid-file) as lost,
# and `campaign cancel` ends its campaign.
PUBLISH_LEASE_S = 30.0


class PublishResult(msgspec.Struct, frozen=True, kw_only=True):
    campaign_id: str
    total: int  # recipients to send: after invalid, duplicate and suppressed rows
    invalid: int
    duplicates: int
    suppressed: int
    jobs: int
    state: str  # `estimate` for a dry run
    segments: int  # SMS segments the campaign costs, over all its recipients
    encodings: dict[str, int]  # messages per encoding (GSM-7, UCS-2)
    invalid_rows: list[InvalidRow] = []  # the first few, for the user to fix


# A recipient row: (line, number as given) or (line, number, values of the body's placeholders).
Row = tuple[int, str] | tuple[int, str, Sequence[str | None]]


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
    staging = _Staging(
        spec, client, settings, broker=broker, dry_run=dry_run, progressive=checked, on_visible=on_visible,
        expected_rows=expected_rows, allowance=None if checked else Allowance.of(settings, max_invalid),
    )  # fmt: skip
    try:
        staging.add_all(rows)
        result = staging.commit()
    except BaseException as e:
        staging.abandon(e)
        raise
    if dry_run:
        staging.discard()
    elif not checked:
        assert broker is not None, "publishing needs a broker"
        enqueue_jobs(broker, spec.campaign_id, spec.type, range(result.jobs))
    return result


def release_at(at: str) -> float:
    """When a campaign scheduled for `at` starts going to Kaleyra (Unix time)."""
    return datetime.fromisoformat(at).timestamp() - SCHEDULE_LEAD_S


def _pages(rows: Iterable[Row], size: int) -> Iterator[tuple[list[int], list[str]]]:
    """Rows without field values, `size` at a time, as their line numbers and numbers as given."""
    rows = iter(rows)
    while batch := list(itertools.islice(rows, size)):
        yield [row[0] for row in batch], [row[1] for row in batch]


def _split(recipients: list[Recipient], positions: list[int]) -> tuple[list[Recipient], list[Recipient]]:
    """(those not at the 1-based `positions`, those at them)."""
    if not positions:
        return recipients, []
    picked = set(positions)
    kept = [r for i, r in enumerate(recipients, 1) if i not in picked]
    return kept, [recipients[i - 1] for i in positions]


def fill_placeholders(
    template: Template, unicode: str, line: int, values: Sequence[str | None]
) -> tuple[str, ...]:
    """The row's values of the body's placeholders, defaults filled in; refuses a row missing one
    without a default, or whose message would be too long or outside `unicode 0`'s alphabet."""
    filled = []
    for index, name in enumerate(template.fields):
        value = values[index] if index < len(values) else None
        if value is None:
            value = template.defaults.get(name)
            if value is None:
                raise SpecError(
                    f"recipients line {line}: no value for {{{name}}} in the body; "
                    f"fill it in or give a default, e.g. {{{name}|there}}"
                )
        filled.append(value)
    body = template.render(filled)
    if not body.strip():
        raise SpecError(f"recipients line {line}: the message is empty once filled in (Kaleyra: E601)")
    if len(body) > MAX_BODY_CHARS:
        raise SpecError(
            f"recipients line {line}: the message has {len(body)} characters once filled in; "
            f"Kaleyra accepts at most {MAX_BODY_CHARS} (E401)"
        )
    if unicode == "0" and needs_ucs2(body):
        outside = next(ch for ch in body if ch not in GSM7)
        raise SpecError(
            f"recipients line {line}: unicode 0 cannot carry {outside!r} (not GSM-7); use auto or 1"
        )
    return tuple(filled)


class _Staging:
    def __init__(
        self,
        spec: CampaignSpec,
        client: redis.Redis,
        settings: Settings,
        *,
        broker: dramatiq.Broker | None,
        dry_run: bool,
        progressive: bool,
        on_visible: Callable[[], None] | None = None,  # told when the first job is enqueued
        expected_rows: int | None = None,
        allowance: Allowance | None = None,  # None: the rows were counted in a first pass
    ) -> None:
        self.spec = spec
        self.client = client
        self.broker = broker
        self.dry_run = dry_run
        self.progressive = progressive and not dry_run  # each job enqueued as soon as it is written
        self.announced = False  # the campaign is visible in Redis (progressive: from its first job)
        self.cancelled = False  # by its owner while publishing: the rest of the rows are not read
        self.state = CampaignState.SCHEDULED if spec.at else CampaignState.QUEUED
        self.finish = client.register_script(source("finish_publishing"))
        self.renew = client.register_script(source("renew_lease"))
        self.publish_job = client.register_script(source("publish_job"))
        self.on_visible = on_visible
        self.page_size = settings.job_size
        self.chunk_size = settings.chunk_size
        self.expected_rows = expected_rows
        self.normaliser = NumberNormaliser(spec.prefix)
        self.tally, self.allowance = Tally(spec.prefix), allowance
        self.seen = _SeenNumbers(client, keys.seen(spec.campaign_id))
        self.listed = client.register_script(source("listed"))
        self.suppression_list = keys.suppression_list(settings.sid)
        # Looked up only for marketing, and only when the account lists anyone; a list written by an
        # older version is refused here, before anything is written (`suppression.in_use`).
        self.suppressing = spec.type in MARKETING_TYPES and suppression.in_use(client, settings.sid)
        self.template = Template(spec.body)
        self.personalised = self.template.personalised  # read once per row
        self.unicode = spec.unicode or settings.default_unicode
        self.page: list[Recipient] = []
        # Recipients not in a job yet, by the time zones they may be in when the campaign keeps a
        # sending window (a job waits for its window as a whole), else all under ().
        self.unique: dict[tuple[str, ...], list[Recipient]] = {}
        self.invalid_rows: list[InvalidRow] = []
        self.invalid_page: list[bytes] = []
        self.duplicate_page: list[bytes] = []  # records of duplicate rows not in Redis yet
        self.total = self.invalid = self.duplicates = self.suppressed = self.jobs = 0
        self.published = 0  # recipients in jobs written so far
        self.segments = 0
        self.encodings: dict[str, int] = {}

    def add_all(self, rows: Iterable[Row]) -> None:
        """Take the rows a page at a time, until the last or a cancel. A page of plain national
        numbers of one shape (the usual file) is normalised at once, without a step per row; a
        file read a page at a time (`PagedRows`) is taken so, without a tuple per row."""
        if self.personalised:
            for row in rows:
                self.add(*row)
                if self.cancelled:
                    return
            return
        for lines, raws in rows.pages() if isinstance(rows, PagedRows) else _pages(rows, self.page_size):
            self._add_page(lines, raws)
            if self.cancelled:
                return

    def _add_page(self, lines: Sequence[int], raws: list[str]) -> None:
        """Rows without field values, as their line numbers and numbers as given."""
        numbers = self.normaliser.normalise_all(raws)
        if numbers is None:
            for line, raw in zip(lines, raws, strict=True):
                self.add(line, raw)
            return
        self.tally.rows += len(numbers)
        self.page.extend(map(Recipient, numbers, lines))
        if len(self.page) >= self.page_size:
            self._flush_page()

    def add(self, line: int, raw: str, values: Sequence[str | None] = ()) -> None:
        self.tally.rows += 1
        try:
            number = self.normaliser.normalise(raw)
        except InvalidNumber as e:
            self.tally.count_invalid(e)
            self._skip(line, raw, e.reason)
            return
        fields = fill_placeholders(self.template, self.unicode, line, values) if self.personalised else ()
        self.page.append(Recipient(number, line, fields))
        if len(self.page) >= self.page_size:
            self._flush_page()

    def commit(self) -> PublishResult:
        if self.allowance is not None:  # before anything of the campaign is visible
            self.tally.refuse_if_over(self.allowance)
        if self.cancelled:
            self.page = []  # never put in a job; its invalid rows are still recorded
        self._flush_page()
        self._write_jobs(final=True)
        self._push_duplicates()
        if not self.template.personalised and self.published:
            body = self.template.render(())
            encoding = encoding_of(body, self.unicode)  # type: ignore[arg-type]
            self.encodings = {encoding.value: self.published}
            self.segments = segments(body, encoding) * self.published
        if self.published == 0:  # a dry run says so too: it tells what `send` would do
            raise SpecError(
                f"no valid recipients: {self.invalid} invalid, {self.duplicates} duplicate "
                f"and {self.suppressed} suppressed rows"
            )
        if self.dry_run:
            return self._result("estimate")
        with self.client.pipeline(transaction=True) as tx:
            if not self.announced:
                self._announce(tx)
            self._finish(tx)
            *_, state = tx.execute()
        self.announced = True
        return self._result(state.decode())

    def _announce(self, tx: redis.client.Pipeline) -> None:
        """Write the campaign's hash and list it, in the caller's transaction."""
        header = self._header()
        tx.hset(keys.campaign(self.spec.campaign_id), mapping=header)
        tx.zadd(keys.CAMPAIGNS_BY_CREATION, {self.spec.campaign_id: header[keys.CREATED_AT]})

    def _header(self) -> dict[FieldT, EncodableT]:
        """What the campaign hash starts with: the spec, the state and counters at zero."""
        return {
            keys.SPEC: records.encode_spec(self.spec),
            keys.STATE: self.state.value,
            **dict.fromkeys((keys.TOTAL, keys.JOBS, keys.SUBMITTED, keys.FAILED, keys.UNKNOWN), 0),
            **dict.fromkeys((keys.CANCELLED, keys.RETRIED), 0),
            keys.CREATED_AT: time.time(),
            **({keys.RELEASE_AT: release_at(self.spec.at)} if self.spec.at else {}),
        }

    def _finish(self, client: redis.Redis) -> None:
        """Write what publishing counted and end it (on `client`, a transaction, or not)."""
        counted: dict[str, int] = {
            keys.INVALID: self.invalid, keys.DUPLICATES: self.duplicates, keys.SUPPRESSED: self.suppressed,
            keys.SEGMENTS: self.segments,
        }  # fmt: skip
        if not self.progressive:  # else counted in Redis with each job, interrupted or not
            counted |= {keys.TOTAL: self.published, keys.JOBS: self.jobs}
        cid = self.spec.campaign_id
        pairs = [item for pair in counted.items() for item in pair]
        self.finish(keys=[keys.campaign(cid), keys.seen(cid)], args=[time.time(), *pairs], client=client)

    def abandon(self, error: BaseException) -> None:
        """The rows could not be read to the end. Nothing visible yet: nothing is left behind. Jobs
        already enqueued (the file changed after it was checked, or the producer was interrupted):
        the campaign is cancelled, so that no more of it goes out, and the user told so."""
        if not self.announced:
            self.discard()
            return
        cid = self.spec.campaign_id
        try:
            with contextlib.suppress(InputError):  # finished already
                cancel(self.client, cid)
            self._finish(self.client)
        except redis.RedisError:
            return  # the error that stopped the reading says more
        if isinstance(error, InputError):
            raise SpecError(
                f"{error}; campaign {cid} was cancelled: the file changed after it was checked, and "
                f"{self.published} of its recipients had been queued (see `campaign status {cid}`)"
            ) from error

    def _result(self, state: str) -> PublishResult:
        return PublishResult(
            campaign_id=self.spec.campaign_id,
            total=self.published,
            invalid=self.invalid,
            duplicates=self.duplicates,
            suppressed=self.suppressed,
            jobs=self.jobs,
            state=state,
            segments=self.segments,
            encodings=self.encodings,
            invalid_rows=self.invalid_rows,
        )

    def discard(self) -> None:
        self.client.unlink(*keys.all_keys(self.spec.campaign_id))

    def _skip(self, line: int, raw: str, reason: str) -> None:
        self.invalid += 1
        row = InvalidRow(line, printable(raw), reason)
        if len(self.invalid_rows) < SHOWN_INVALID_ROWS:
            self.invalid_rows.append(row)
        self.invalid_page.append(records.encode_invalid_row(row))
        if len(self.invalid_page) >= self.page_size:
            self._flush_page()

    def _flush_page(self) -> None:
        cid = self.spec.campaign_id
        if self.invalid_page and not self.dry_run:
            self.client.rpush(keys.invalid(cid), *self.invalid_page)
        self.invalid_page = []
        if not self.page:
            return
        fresh, repeated = _split(self.page, self.seen.repeats(self.page))
        self.duplicates += len(repeated)
        self.page = []
        if repeated and not self.dry_run:  # for the report, which finds the lines they repeat
            self.duplicate_page.extend(map(records.encode_left_out, repeated))
            if len(self.duplicate_page) >= self.page_size:
                self._push_duplicates()
        # The account's list lives outside the campaign's hash slot: a second script, not the first.
        # It holds marketing opt-outs: OTP and transactional messages still go.
        if fresh and self.suppressing:
            fresh, left_out = _split(
                fresh, self.listed(keys=[self.suppression_list], args=[joined_numbers(fresh)])
            )
            self.suppressed += len(left_out)
            if left_out and not self.dry_run:
                self.client.rpush(keys.suppressed(cid), *map(records.encode_left_out, left_out))
        if self.template.personalised:
            self._count_segments(fresh)
        if self.spec.send_window is None:
            self.unique.setdefault((), []).extend(fresh)
        else:
            for r in fresh:
                self.unique.setdefault(zones_of(r.to), []).append(r)
        self.total += len(fresh)
        if self.spec.type is MessageType.OTP and self.total > 1:
            raise SpecError("type OTP sends to exactly one recipient; the file has more than one")
        self._write_jobs(final=False)

    def _push_duplicates(self) -> None:
        """A page of them at a time: a file with a duplicate in every page would otherwise cost a
        round trip a page."""
        if self.duplicate_page:
            self.client.rpush(keys.duplicates(self.spec.campaign_id), *self.duplicate_page)
            self.duplicate_page = []

    def _count_segments(self, recipients: list[Recipient]) -> None:
        render, encodings = self.template.render, self.encodings
        for r in recipients:
            body = render(r.fields)
            encoding = encoding_of(body, self.unicode)  # type: ignore[arg-type]
            encodings[encoding.value] = encodings.get(encoding.value, 0) + 1
            self.segments += segments(body, encoding)

    def _job_size(self) -> int:
        """Whole chunks, at most `JOB_SHARE` of the rows before the job or after it, at least one
        chunk, at most CAMPAIGN_JOB_SIZE."""
        if self.expected_rows is None:
            return self.page_size
        after = self.expected_rows - self.published - self.invalid - self.duplicates - self.suppressed
        chunks = math.ceil(min(self.published, after) * JOB_SHARE / self.chunk_size)
        return min(self.page_size, max(1, chunks) * self.chunk_size)

    def _write_jobs(self, *, final: bool) -> None:
        jobs_before = self.jobs
        for zones, waiting in self.unique.items():
            while (len(waiting) >= (size := self._job_size()) or (final and waiting)) and not self.cancelled:
                batch, waiting[:] = waiting[:size], waiting[size:]
                if not self.dry_run:
                    job = Job(
                        campaign_id=self.spec.campaign_id, index=self.jobs, recipients=batch, zones=zones
                    )
                    if self.progressive:
                        self._publish_job(job)
                    else:
                        record = records.encode_job(job)
                        self.client.hset(keys.jobs(self.spec.campaign_id), str(self.jobs), record)
                self.jobs += 1
                self.published += len(batch)
        renewed = self.progressive and self.jobs > jobs_before  # with each job it published
        if self.announced and not self.cancelled and not renewed:  # with every page of rows
            state = self.renew(keys=[keys.campaign(self.spec.campaign_id)], args=[PUBLISH_LEASE_S])
            self.cancelled = state == CampaignState.CANCELLED.value.encode()

    def _publish_job(self, job: Job) -> None:
        """Write the job, count its recipients in the campaign and enqueue it: workers may start on it
        now. The first job makes the campaign visible, under the producer's publishing lease."""
        cid = self.spec.campaign_id
        job_keys = [keys.campaign(cid), keys.jobs(cid)]
        record = records.encode_job(job)
        job_args: list[EncodableT] = [PUBLISH_LEASE_S, job.index, record, len(job.recipients)]
        if self.announced:
            state = self.publish_job(keys=job_keys, args=job_args)
        else:
            with self.client.pipeline(transaction=True) as tx:
                self._announce(tx)
                self.publish_job(keys=job_keys, args=job_args, client=tx)
                *_, state = tx.execute()
        self.announced = True
        if state == CampaignState.CANCELLED.value.encode():
            self.cancelled = True  # by its owner: this job is settled as cancelled, no more are written
        assert self.broker is not None, "publishing needs a broker"
        enqueue_jobs(self.broker, cid, self.spec.type, [job.index])
        if job.index == 0 and self.on_visible is not None:
            self.on_visible()


class _SeenNumbers:
    """The numbers of a campaign published so far: in this process's memory, as integers (an E.164
    number is `+` and digits with no leading zero), until `SEEN_IN_MEMORY_MAX`; then moved to a
    Redis set, which finds the repeats of the rest."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self.client, self.key = client, key
        self.in_memory: set[int] | None = set()
        self.first_seen = client.register_script(source("first_seen"))

    def repeats(self, page: Sequence[Recipient]) -> list[int]:
        """The 1-based positions, ascending, of the page's numbers seen before (in earlier pages or
        earlier in this one); the others are remembered."""
        numbers = self.in_memory
        if numbers is not None and len(numbers) + len(page) > SEEN_IN_MEMORY_MAX:
            self._move_to_redis(numbers)
            numbers = None
        if numbers is None:
            return self.first_seen(keys=[self.key], args=[joined_numbers(page)])
        page_numbers = list(map(int, [r.to for r in page]))
        if numbers.isdisjoint(page_numbers):  # the usual page: no Python step per number
            before = len(numbers)
            numbers.update(page_numbers)
            if len(numbers) - before == len(page_numbers):
                return []
            numbers = set()  # the page repeats itself only (all of it is remembered now): find where
        repeats = []
        for position, number in enumerate(page_numbers, 1):
            if number in numbers:
                repeats.append(position)
            else:
                numbers.add(number)
        return repeats

    def _move_to_redis(self, numbers: set[int]) -> None:
        self.in_memory = None
        batch: list[str] = []
        for number in numbers:
            batch.append(f"+{number}")
            if len(batch) == 10_000:
                self.client.sadd(self.key, *batch)
                batch = []
        if batch:
            self.client.sadd(self.key, *batch)
