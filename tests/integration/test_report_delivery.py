"""`campaign report` shows each recipient's delivery (its most final report, the trace, the report's time),
read from its request's delivery string, on fakeredis and a real Redis."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime

import pytest

from campaign import connect
from campaign.cli import main
from ops.simulator import SimulatorConfig, start_in_thread
from producer import report
from producer.publish import publish_campaign
from producer.report import COLUMNS, report_rows
from producer.spec import build_spec
from redis_model import keys
from redis_model.delivery import HEADER_BYTES, split_message_id
from schemas.delivery import DeliveryReport, DeliveryStatus
from tests.conftest import API_KEY
from tests.integration.test_campaign_flow import wait_completed
from tests.integration.test_delivery_reports import record
from worker.broker import build_broker

DELIVERED, UNDELIVERED, FAILED, SENT = (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED,
                                        DeliveryStatus.FAILED, DeliveryStatus.SENT)  # fmt: skip
# Whole seconds: the store keeps a report's time in seconds.
NOW = int(time.time())


def sent_campaign(
    backend, start_worker, make_settings, count: int, **settings_overrides
) -> tuple[str, dict[int, str]]:
    """A campaign of `count` sent through the simulator: its id and each line's message id."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=3)) as simulator:
        settings = make_settings(simulator.base_url, **settings_overrides)
        broker = start_worker(settings)
        spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Your order", prefix="+91")
        rows = [(i + 2, f"90000{i:05d}") for i in range(count)]
        publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
        wait_completed(backend, spec.campaign_id)
    return spec.campaign_id, {
        row.line: row.message_id for row in report_rows(backend.client, spec.campaign_id)
    }


def report_csv(backend, monkeypatch, capsys, campaign_id: str) -> dict[int, dict[str, str]]:
    """`campaign report ID --csv` on the backend: each line's row, by column."""
    monkeypatch.setattr(connect, "redis_client", lambda: backend.client)
    assert main(["report", campaign_id, "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and tuple(rows[0]) == COLUMNS
    return {int(row["line"]): row for row in rows}


def iso(at: int) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def test_each_recipients_row_ends_with_its_delivery_trace_and_report_time(
    backend, start_worker, make_settings, monkeypatch, capsys
):
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 7)
    record(
        backend,
        [
            DeliveryReport(ids[2], DELIVERED, "DELIVRD", NOW + 3),
            DeliveryReport(ids[3], UNDELIVERED, "ABSENT-SUB", NOW + 60),
            DeliveryReport(ids[4], FAILED, "NOT-SENT", NOW + 5),
            DeliveryReport(ids[5], SENT, "SENT", NOW + 1),
            # line 6: no report at all
            DeliveryReport(ids[7], SENT, "", NOW + 1),
            DeliveryReport(ids[8], UNDELIVERED, "SOMETHING-NEW", NOW + 9),
        ],
        [DeliveryReport(ids[7], DELIVERED, "DELIVRD", NOW + 40)],  # sent, then delivered
    )

    rows = report_csv(backend, monkeypatch, capsys, campaign_id)

    shown = {line: (row["delivery"], row["status_trace"], row["reported_at"]) for line, row in rows.items()}
    assert shown == {
        2: ("delivered", "DELIVRD", iso(NOW + 3)),
        3: ("undelivered", "ABSENT-SUB", iso(NOW + 60)),
        4: ("failed", "NOT-SENT", iso(NOW + 5)),
        5: ("sent", "SENT", iso(NOW + 1)),
        6: ("", "", ""),
        7: ("delivered", "DELIVRD", iso(NOW + 40)),
        8: ("undelivered", "OTHER", iso(NOW + 9)),
    }
    assert all(row["outcome"] == "submitted" and row["message_id"] == ids[line] for line, row in rows.items())


def test_rows_without_a_message_id_have_empty_delivery_columns(backend, make_settings, monkeypatch, capsys):
    """Pending (no worker runs), invalid and duplicate rows: nothing was sent, so no report is looked for."""
    settings = make_settings("http://127.0.0.1:9")
    spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Hi", prefix="+91")
    rows = [(2, "9000000001"), (3, "nope"), (4, "9000000001")]
    broker = build_broker(settings, backend.client)
    publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)

    shown = report_csv(backend, monkeypatch, capsys, spec.campaign_id)

    assert {line: row["outcome"] for line, row in shown.items()} == {
        2: "pending",
        3: "invalid",
        4: "duplicate",
    }
    assert all(
        (row["delivery"], row["status_trace"], row["reported_at"]) == ("", "", "") for row in shown.values()
    )


def test_each_requests_string_is_read_once_a_page_of_requests_at_a_time(
    backend, start_worker, make_settings, monkeypatch
):
    """A request a recipient (chunks of one), pages of three requests, jobs of five recipients."""
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 12, chunk_size=1, job_size=5)
    record(
        backend,
        [DeliveryReport(message_id, DELIVERED, "DELIVRD", NOW + line) for line, message_id in ids.items()],
    )
    monkeypatch.setattr(report, "DELIVERY_PAGE", 3)
    pages: list[list[str]] = []
    real_read = report.campaign_deliveries

    def counted(client, campaign, request_ids):
        pages.append(list(request_ids))
        return real_read(client, campaign, request_ids)

    monkeypatch.setattr(report, "campaign_deliveries", counted)

    rows = list(report_rows(backend.client, campaign_id))

    assert {row.line: (row.delivery, row.reported_at) for row in rows} == {
        line: ("delivered", iso(NOW + line)) for line in ids
    }
    read = [request_id for page in pages for request_id in page]
    assert sorted(read) == sorted(split_message_id(message_id)[0] for message_id in ids.values())
    assert all(1 <= len(page) <= 3 for page in pages)
    assert len(pages) == 5  # jobs of 5, 5 and 2 recipients: pages of 3 + 2, 3 + 2, 2


def test_a_delivery_string_that_names_another_campaign_is_not_shown(backend, start_worker, make_settings):
    """As when a request's string expired and another campaign's took its key: its records are not ours."""
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 2)
    record(backend, [DeliveryReport(message_id, DELIVERED, "DELIVRD", NOW) for message_id in ids.values()])
    request_id = split_message_id(ids[2])[0]
    key = keys.delivery(request_id)
    stored = backend.client.get(key)
    backend.client.set(key, stored[:HEADER_BYTES].replace(campaign_id.encode(), b"x" * len(campaign_id)) +
                       stored[HEADER_BYTES:])  # fmt: skip

    rows = {row.line: row for row in report_rows(backend.client, campaign_id)}

    assert rows[2].delivery == rows[2].status_trace == rows[2].reported_at == ""


@pytest.mark.parametrize("backend", ["redis"], indirect=True)
def test_the_report_of_a_campaign_with_reports_streams_through_the_console_script_entry(
    backend, start_worker, make_settings, monkeypatch, capsys
):
    """Through REDIS_URL, as users run it."""
    campaign_id, ids = sent_campaign(backend, start_worker, make_settings, 3)
    record(backend, [DeliveryReport(ids[3], UNDELIVERED, "MOB-OFF", NOW)])
    monkeypatch.setenv("REDIS_URL", backend.url)

    assert main(["report", campaign_id, "--full-numbers"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "line,number,outcome,code,message_id,delivery,status_trace,reported_at"
    assert f"3,+919000000001,submitted,,{ids[3]},undelivered,MOB-OFF,{iso(NOW)}" in lines
    assert f"2,+919000000000,submitted,,{ids[2]},,," in lines
