"""A file is checked through first, then its jobs go to the workers as they are written: sending
starts before the last row, the campaign completes only after it, and steering works meanwhile."""

from __future__ import annotations

import math
import os
import threading

import msgspec
import pytest

from producer.control import campaign_status, cancel, invalid_rows
from producer.publish import publish_campaign, publish_file
from producer.publishing.batching import JOB_SHARE
from producer.publishing.dedup import SEEN_IN_MEMORY_MAX
from producer.resend import resend
from producer.spec import build_spec
from redis_model import keys
from schemas.campaign import Job
from schemas.errors import InputError, RecipientsError, SpecError
from tests.integration.test_campaign_flow import wait_completed, wait_for
from worker.broker import build_broker

RETENTION_S = 3600  # how long a finished campaign stays in Redis

JOB_SIZE = 1000


def numbers(start: int, count: int) -> list[tuple[int, str]]:
    return [(start + i + 2, f"90000{start + i:05d}") for i in range(count)]


def publish_checked(backend, broker, settings, spec, rows):
    """As `publish_file` does once the file passed its check."""
    return publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings, checked=True)


def mkt_spec(settings, body: str = "Hi"):
    return build_spec(settings=settings, sender="KLRHXA", type="MKT", body=body, prefix="+91")


def test_jobs_are_sent_while_the_rest_is_read_and_the_campaign_completes_after_the_last_row(
    backend, start_worker, make_settings, simulator
):
    settings = make_settings(simulator.base_url, job_size=JOB_SIZE)
    broker = start_worker(settings)
    spec = mkt_spec(settings)
    seen_mid_file = []

    def current():
        return campaign_status(backend.client, spec.campaign_id)

    def rows():
        yield from numbers(0, 2 * JOB_SIZE)
        yield from numbers(2 * JOB_SIZE, 1)  # the third job is still being filled
        # Both full jobs reach the gateway before the producer reads on.
        seen_mid_file.append(wait_for(lambda: (s := current()).submitted == 2000 and s))
        yield from numbers(2 * JOB_SIZE + 1, 499)

    result = publish_checked(backend, broker, settings, spec, rows())
    status = wait_completed(backend, spec.campaign_id)

    (mid,) = seen_mid_file
    assert mid.publishing and not mid.publisher_lost
    assert mid.state == "running"  # every published recipient settled, yet not completed
    assert (mid.total, mid.jobs, mid.pending) == (2000, 2, 0)
    assert (result.total, result.jobs) == (2500, 3)
    assert (status.total, status.submitted, status.pending, status.publishing) == (2500, 2500, 0, False)
    assert simulator.record.counts_by_number() == {f"+9190000{i:05d}": 1 for i in range(2500)}


def test_a_campaign_settled_before_its_last_rows_completes_when_they_are_read(
    backend, start_worker, make_settings, simulator
):
    settings = make_settings(simulator.base_url, job_size=JOB_SIZE)
    broker = start_worker(settings)
    spec = mkt_spec(settings)

    def rows():
        yield from numbers(0, JOB_SIZE)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted == JOB_SIZE)
        yield from numbers(0, 10)  # duplicates only: no job follows
        yield (JOB_SIZE + 20, "not a number")

    result = publish_checked(backend, broker, settings, spec, rows())

    status = campaign_status(backend.client, spec.campaign_id)
    assert result.state == status.state == "completed"  # by the producer's finish, not a worker
    assert (status.total, status.submitted, status.duplicates, status.invalid) == (JOB_SIZE, JOB_SIZE, 10, 1)
    assert status.finished_at is not None and not status.publishing


def test_cancelling_while_publishing_stops_the_reading(backend, start_worker, make_settings, simulator):
    settings = make_settings(simulator.base_url, job_size=JOB_SIZE)
    broker = start_worker(settings)
    spec = mkt_spec(settings)
    read = []

    def rows():
        for row in numbers(0, 10 * JOB_SIZE):
            if row[0] == JOB_SIZE + 2:  # the first job is out
                cancel(backend.client, spec.campaign_id, retention_s=RETENTION_S)
            read.append(row)
            yield row

    result = publish_checked(backend, broker, settings, spec, rows())
    status = wait_for(lambda: (s := campaign_status(backend.client, spec.campaign_id)).pending == 0 and s)

    assert result.state == status.state == "cancelled"
    assert len(read) < 3 * JOB_SIZE  # the producer stopped soon after the cancel, not at the end
    assert result.total == status.total == status.submitted + status.cancelled
    assert status.cancelled >= JOB_SIZE  # the job written after the cancel went nowhere
    assert len(simulator.record.messages) == status.submitted


def test_a_refusal_after_the_check_cancels_what_was_queued_and_says_so(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    broker = build_broker(settings, backend.client)
    spec = mkt_spec(settings, body="Hi {name}")

    def rows():  # as if the file changed between the check and the publishing
        yield from ((line, number, ("Asha",)) for line, number in numbers(0, JOB_SIZE))
        yield (JOB_SIZE + 2, "9876543210", (None,))

    refusal = rf"line {JOB_SIZE + 2}: no value for \{{name\}}.*was cancelled.* {JOB_SIZE} of its"
    with pytest.raises(SpecError, match=refusal):
        publish_checked(backend, broker, settings, spec, rows())
    status = campaign_status(backend.client, spec.campaign_id)
    assert (status.state, status.total, status.publishing) == ("cancelled", JOB_SIZE, False)


@pytest.mark.parametrize(
    ("tail", "refusal"),
    [
        (b"9000000002,\n", r"line 1003: no value for \{name\}"),
        (b"9000000002,Ravi\xff\n", "not UTF-8"),
    ],
)
def test_a_file_is_refused_by_its_check_before_anything_is_published(
    backend, make_settings, tmp_path, tail, refusal
):
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    path = tmp_path / "r.csv"
    path.write_bytes(b"to,name\n" + b"".join(b"9%09d,Asha\n" % i for i in range(1001)) + tail)
    spec = mkt_spec(settings, body="Hi {name}")

    with pytest.raises((SpecError, RecipientsError), match=refusal):
        publish_file(spec, str(path), client=backend.client, broker=build_broker(settings, backend.client),
                     settings=settings)  # fmt: skip
    assert backend.client.keys("*") == []  # no campaign, no job, no message


def test_a_file_published_progressively_adds_up(backend, start_worker, make_settings, simulator, tmp_path):
    settings = make_settings(simulator.base_url, job_size=JOB_SIZE)
    broker = start_worker(settings)
    path = tmp_path / "r.csv"
    path.write_text("to\n" + "".join(f"9{i:09d}\n" for i in range(2500)) + "9000000001\nnope\n")
    spec = mkt_spec(settings)

    result = publish_file(spec, str(path), client=backend.client, broker=broker, settings=settings)
    status = wait_completed(backend, spec.campaign_id)

    assert (result.total, result.jobs, result.duplicates, result.invalid) == (2500, 3, 1, 1)
    assert (status.total, status.submitted, status.duplicates, status.invalid) == (2500, 2500, 1, 1)
    assert status.segments == 2500
    assert len(simulator.record.messages) == 2500


def test_resend_waits_for_the_publishing_to_end(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    broker = build_broker(settings, backend.client)
    spec = mkt_spec(settings)
    refusals = []

    def rows():
        yield from numbers(0, JOB_SIZE + 1)
        with pytest.raises(InputError) as refused:
            resend(backend.client, broker, settings, spec.campaign_id, failed=True, unknown=True)
        refusals.append(str(refused.value))
        yield from numbers(JOB_SIZE + 1, 1)

    publish_checked(backend, broker, settings, spec, rows())
    assert refusals == [f"campaign {spec.campaign_id!r} is still being published; resend once it is"]


def test_a_cancel_is_noticed_within_a_page_even_when_no_job_follows(backend, make_settings):
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    broker = build_broker(settings, backend.client)
    spec = mkt_spec(settings)
    read = 0

    def rows():
        nonlocal read
        yield from numbers(0, JOB_SIZE)
        cancel(backend.client, spec.campaign_id, retention_s=RETENTION_S)
        for row in numbers(0, 20 * JOB_SIZE):  # duplicates of the first job only: no job is written
            read += 1
            yield (row[0], numbers(0, JOB_SIZE)[row[0] % JOB_SIZE][1])

    result = publish_checked(backend, broker, settings, spec, rows())
    assert result.state == "cancelled"
    assert read <= JOB_SIZE + 1  # the page being read when the lease was renewed, not the 20 after it


def test_a_fifo_is_read_once_and_staged(backend, start_worker, make_settings, simulator, tmp_path):
    settings = make_settings(simulator.base_url, job_size=JOB_SIZE)
    broker = start_worker(settings)
    fifo = tmp_path / "recipients"
    os.mkfifo(fifo)
    writer = threading.Thread(
        target=lambda: fifo.write_text("to\n" + "".join(f"9{i:09d}\n" for i in range(1500)))
    )
    writer.start()
    spec = mkt_spec(settings)

    result = publish_file(spec, str(fifo), client=backend.client, broker=broker, settings=settings)
    writer.join()

    assert (result.total, result.jobs) == (1500, 2)
    assert wait_completed(backend, spec.campaign_id).submitted == 1500


def test_duplicates_are_found_within_a_page_across_pages_and_past_a_thousand_numbers(backend, make_settings):
    """The dedupe script asks the seen set a thousand numbers at a time: the first occurrence of
    each number is kept, in file order, wherever its repeats fall."""
    settings = make_settings("http://127.0.0.1:9", job_size=2500)
    spec = mkt_spec(settings)
    first = numbers(0, 2500)  # the first page: 2499 of them and a repeat, three batches of the set
    repeats = [(3000, "9000000007"), (3001, "9000002400"), (3002, "9000002400"), (3003, "9000001500")]
    rows = [*first[:1200], (1500, "9000000003"), *first[1200:], *repeats, *numbers(2600, 10)]
    result = publish_checked(backend, build_broker(settings, backend.client), settings, spec, rows)
    assert (result.total, result.duplicates) == (2510, 5)
    jobs = [job.recipients for job in jobs_of(backend, spec.campaign_id, result.jobs)]
    published = [r.to for job in jobs for r in job]
    assert published == [f"+9190000{i:05d}" for i in [*range(2500), *range(2600, 2610)]]
    assert [r.line for r in jobs[0][1199:1202]] == [1201, 1202, 1203]  # the repeat in the page left out


def jobs_of(backend, campaign_id: str, count: int) -> list[Job]:
    raw = backend.client.hmget(keys.jobs(campaign_id), [str(i) for i in range(count)])
    return [msgspec.msgpack.decode(job, type=Job) for job in raw]


@pytest.mark.parametrize("in_memory", [SEEN_IN_MEMORY_MAX, 1500, 0], ids=["memory", "moved", "redis"])
def test_duplicates_are_the_same_found_in_memory_in_redis_or_moved_between_them(
    backend, make_settings, monkeypatch, in_memory
):
    """Past `SEEN_IN_MEMORY_MAX` numbers the seen set moves to Redis: repeats of numbers from before
    the move are still found, and the first occurrence of each number is the one kept."""
    monkeypatch.setattr("producer.publishing.dedup.SEEN_IN_MEMORY_MAX", in_memory)
    settings = make_settings("http://127.0.0.1:9", job_size=1000)
    spec = mkt_spec(settings)
    picks = [i % 2600 for i in range(0, 7 * 3100, 7)]  # each of 2600 numbers, some twice, in a jumble
    rows = [(line, f"90000{n:05d}") for line, n in enumerate(picks, start=2)]
    result = publish_checked(backend, build_broker(settings, backend.client), settings, spec, rows)

    first_seen = list(dict.fromkeys(picks))
    assert (result.total, result.duplicates) == (len(first_seen), len(picks) - len(first_seen))
    published = [r for job in jobs_of(backend, spec.campaign_id, result.jobs) for r in job.recipients]
    assert [r.to for r in published] == [f"+9190000{n:05d}" for n in first_seen]
    assert [r.line for r in published] == [picks.index(n) + 2 for n in first_seen]
    assert not backend.client.exists(keys.seen(spec.campaign_id))  # gone once publishing ends


def test_pages_of_plain_numbers_and_pages_with_a_bad_row_keep_every_line_number(backend, make_settings):
    """A page of plain national numbers is normalised at once, one with anything else row by row:
    either way each recipient keeps its line and each invalid row is listed with its own."""
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    spec = mkt_spec(settings)
    rows = [*numbers(0, 1500), (1502, "12345"), *numbers(1501, 1200), (2703, "+91 90000 02701")]
    broker = build_broker(settings, backend.client)
    result = publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)

    assert (result.total, result.invalid) == (2701, 1)
    assert [(r.line, r.value) for r in invalid_rows(backend.client, spec.campaign_id)] == [(1502, "12345")]
    decoder = msgspec.msgpack.Decoder(Job)
    recipients = [
        r
        for index in range(result.jobs)
        for r in decoder.decode(backend.client.hget(keys.jobs(spec.campaign_id), str(index))).recipients
    ]
    assert [(r.line, r.to) for r in recipients] == [
        *((line, f"+91{number}") for line, number in numbers(0, 1500)),
        *((line, f"+91{number}") for line, number in numbers(1501, 1200)),
        (2703, "+919000002701"),
    ]


def test_a_file_read_a_page_at_a_time_keeps_every_line_number(backend, make_settings, tmp_path):
    """`publish_file` takes a CSV file without quotes as pages of line numbers and numbers: blank
    lines, a bad row and a repeated number keep the lines of the rows around them."""
    settings = make_settings("http://127.0.0.1:9", job_size=JOB_SIZE)
    spec = mkt_spec(settings)
    lines = ["to,name", *(f"90000{i:05d},x" for i in range(1500)), "", "12345,bad", "",
             *(f"90000{i:05d}" for i in range(1500, 2700)), "9000000007,again"]  # fmt: skip
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n")
    broker = build_broker(settings, backend.client)
    result = publish_file(spec, str(path), client=backend.client, broker=broker, settings=settings)

    assert (result.total, result.invalid, result.duplicates) == (2700, 1, 1)
    assert [(r.line, r.value) for r in invalid_rows(backend.client, spec.campaign_id)] == [(1503, "12345")]
    decoder = msgspec.msgpack.Decoder(Job)
    recipients = [
        r
        for index in range(result.jobs)
        for r in decoder.decode(backend.client.hget(keys.jobs(spec.campaign_id), str(index))).recipients
    ]
    expected = [(i + 2, f"+9190000{i:05d}") for i in range(1500)]
    expected += [(i + 5, f"+9190000{i:05d}") for i in range(1500, 2700)]
    assert [(r.line, r.to) for r in recipients] == expected


def test_jobs_are_small_at_both_ends_of_a_file_and_whole_chunks_in_between(backend, make_settings, tmp_path):
    """Read from a file, a job holds at most `JOB_SHARE` of the recipients before it or after it, in
    whole chunks, one chunk at least and CAMPAIGN_JOB_SIZE at most: threads start together on a
    campaign and end it together."""
    settings = make_settings("http://127.0.0.1:9", chunk_size=100, job_size=500)
    spec = mkt_spec(settings)
    path = tmp_path / "recipients.csv"
    path.write_text("to\n" + "".join(f"90000{i:05d}\n" for i in range(20_000)))

    broker = build_broker(settings, backend.client)
    result = publish_file(spec, str(path), client=backend.client, broker=broker, settings=settings)
    sizes = [len(job.recipients) for job in jobs_of(backend, spec.campaign_id, result.jobs)]

    assert sum(sizes) == result.total == 20_000
    assert sizes[0] == sizes[-1] == 100 and max(sizes) == 500
    assert all(size % 100 == 0 for size in sizes)
    peak = sizes.index(500)
    assert sizes[: peak + 1] == sorted(sizes[: peak + 1]) and sizes[peak:] == sorted(
        sizes[peak:], reverse=True
    )
    before = 0
    for size in sizes:  # the header line counts as a row: a chunk of slack
        assert size <= max(100, math.ceil(min(before, 20_000 - before) * JOB_SHARE / 100) * 100 + 100)
        before += size


def test_jobs_from_a_stream_all_hold_campaign_job_size(backend, make_settings):
    """Read once (stdin, a pipe), the rows are not counted beforehand: every job but the last is full."""
    settings = make_settings("http://127.0.0.1:9", chunk_size=100, job_size=500)
    spec = mkt_spec(settings)
    result = publish_checked(
        backend, build_broker(settings, backend.client), settings, spec, numbers(0, 2300)
    )
    sizes = [len(job.recipients) for job in jobs_of(backend, spec.campaign_id, result.jobs)]
    assert sizes == [500, 500, 500, 500, 300]
