"""Run a campaign's rows through the stages into a writer, a page at a time, and say what was published.

Read (`producer.recipients`) -> normalise (`normalising`) and de-duplicate (`dedup`) -> suppress
(`suppressing`) -> batch into jobs (`batching`, `cost`) -> write (`writers`). Nothing here knows
which writer it writes to, or spells anything of Redis.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from producer.invalid import Allowance
from producer.publishing.batching import Batching
from producer.publishing.cost import Cost
from producer.publishing.dedup import SeenNumbers
from producer.publishing.normalising import Normalising, Row, pages_of
from producer.publishing.suppressing import Suppressing
from producer.publishing.writers import Writer
from producer.recipients import PagedRows
from redis_model.publishing import Counted, PublishingStore
from schemas.campaign import CampaignSpec, InvalidRow, MessageType
from schemas.errors import SpecError
from schemas.settings import Settings


class CampaignCounts(msgspec.Struct, frozen=True, kw_only=True):
    """What a recipients file came to: a dry run's answer (nothing published, so no campaign)."""

    total: int  # recipients to send: after invalid, duplicate and suppressed rows
    invalid: int
    duplicates: int
    suppressed: int
    jobs: int
    state: str  # `estimate` for a dry run
    segments: int  # SMS segments the campaign costs, over all its recipients
    encodings: dict[str, int]  # messages per encoding (GSM-7, UCS-2)
    invalid_rows: list[InvalidRow] = []  # the first few, for the user to fix


class PublishResult(CampaignCounts, frozen=True, kw_only=True):
    campaign_id: str  # a dry run's was never published: nothing is found under it

    def counts(self) -> CampaignCounts:
        return CampaignCounts(**{name: getattr(self, name) for name in CampaignCounts.__struct_fields__})


class Publishing:
    """One campaign's stages, fed rows (`add_all`) and then committed (`commit`)."""

    def __init__(
        self,
        spec: CampaignSpec,
        settings: Settings,
        *,
        store: PublishingStore,
        writer: Writer,
        suppressing: bool,  # marketing, on an account whose list holds anyone
        expected_rows: int | None = None,  # about how many rows there are, to size the jobs
        allowance: Allowance | None = None,  # None: the rows were counted in a first pass
    ) -> None:
        self.spec, self.writer, self.allowance = spec, writer, allowance
        self.page_size = settings.job_size
        self.normalising = Normalising(spec, settings, on_full=self._flush_page)
        self.seen = SeenNumbers(store)
        self.suppressing = Suppressing(store, settings.sid) if suppressing else None
        self.batching = Batching(spec, settings, expected_rows)
        self.cost = Cost(self.normalising.template, self.normalising.unicode)
        self.recipients = 0  # found so far, in a job or waiting for one

    def add_all(self, rows: Iterable[Row]) -> None:
        """Take the rows until the last or a cancel; a file read a page at a time (`PagedRows`) is
        taken so, without a tuple per row."""
        normalising, writer = self.normalising, self.writer
        if normalising.personalised:
            for row in rows:
                normalising.add(*row)
                if writer.cancelled:
                    return
            return
        pages = rows.pages() if isinstance(rows, PagedRows) else pages_of(rows, self.page_size)
        for lines, raws in pages:
            normalising.add_page(lines, raws)
            if writer.cancelled:
                return

    def commit(self) -> PublishResult:
        if self.allowance is not None:  # before anything of the campaign is visible
            self.normalising.tally.refuse_if_over(self.allowance)
        if self.writer.cancelled:
            self.normalising.take_page()  # never put in a job; its invalid rows are still recorded
        self._flush_page()
        self._write_jobs(final=True)
        published = self.batching.published
        if not self.normalising.personalised and published:
            self.cost.count_shared(published)
        if published == 0:  # a dry run says so too: it tells what `send` would do
            counted = self.counted()
            raise SpecError(
                f"no valid recipients: {counted.invalid} invalid, {counted.duplicates} duplicate "
                f"and {counted.suppressed} suppressed rows"
            )
        return self._result(self.writer.commit(self.counted()))

    def counted(self) -> Counted:
        return Counted(
            invalid=self.normalising.invalid,
            duplicates=self.seen.duplicates,
            suppressed=self.suppressing.suppressed if self.suppressing else 0,
            segments=self.cost.segments,
            total=self.batching.published,
            jobs=self.batching.jobs,
        )

    def _flush_page(self) -> None:
        """Through the stages after normalising: de-duplicate, suppress, count, batch and write."""
        writer = self.writer
        if self.normalising.invalid_page:
            writer.write_invalid(self.normalising.take_invalid())
        page = self.normalising.take_page()
        if not page:
            return
        fresh, repeated = self.seen.split(page)
        if repeated:  # for the report, which finds the lines they repeat
            writer.write_duplicates(repeated)
        if fresh and self.suppressing is not None:
            fresh, left_out = self.suppressing.split(fresh)
            if left_out:
                writer.write_suppressed(left_out)
        if self.normalising.personalised:
            self.cost.count(fresh)
        self.batching.add(fresh)
        self.recipients += len(fresh)
        if self.spec.type is MessageType.OTP and self.recipients > 1:
            raise SpecError("type OTP sends to exactly one recipient; the file has more than one")
        self._write_jobs(final=False)

    def _write_jobs(self, *, final: bool) -> None:
        writer, wrote_jobs = self.writer, False
        if not writer.cancelled:
            counted = self.counted()
            left_out = counted.invalid + counted.duplicates + counted.suppressed
            for job in self.batching.ready(final=final, left_out=left_out):
                writer.write_job(job)
                wrote_jobs = True
                if writer.cancelled:
                    break
        writer.page_done(wrote_jobs=wrote_jobs)

    def _result(self, state: str) -> PublishResult:
        counted = self.counted()
        return PublishResult(
            campaign_id=self.spec.campaign_id,
            total=self.batching.published,
            invalid=counted.invalid,
            duplicates=counted.duplicates,
            suppressed=counted.suppressed,
            jobs=self.batching.jobs,
            state=state,
            segments=counted.segments,
            encodings=self.cost.encodings,
            invalid_rows=self.normalising.invalid_rows,
        )
