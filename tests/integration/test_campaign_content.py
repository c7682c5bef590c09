"""Personalised bodies, the suppression list, dry runs and the per-recipient report, end to end
against the simulator, on fakeredis and on a real Redis."""

from __future__ import annotations

import pytest

from producer import suppression
from producer.publish import publish_campaign
from producer.recipients import open_recipients
from producer.report import report_rows
from producer.resend import resend
from producer.spec import build_spec
from redis_model import keys
from schemas.errors import SpecError
from schemas.template import Template
from tests.integration.test_campaign_flow import wait_completed
from worker.broker import build_broker


def publish_file(backend, broker, settings, path, body, *, dry_run=False):
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body=body, prefix="+91")
    with open_recipients(str(path), Template(spec.body).fields) as rows:
        result = publish_campaign(
            spec, rows, client=backend.client, broker=broker, settings=settings, dry_run=dry_run
        )
    return spec, result


def test_each_recipient_gets_its_own_body_with_defaults_for_missing_values(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    path = tmp_path / "r.csv"
    path.write_text("to,name,points\n9000000001,Asha,120\n9000000002,,7\n9000000003,Ravi,0\n")

    spec, _ = publish_file(backend, broker, settings, path, "Hi {name|there}, you have {points} points")
    wait_completed(backend, spec.campaign_id)

    received = {m.to: m.body for m in simulator.record.messages}
    assert received == {
        "+919000000001": "Hi Asha, you have 120 points",
        "+919000000002": "Hi there, you have 7 points",
        "+919000000003": "Hi Ravi, you have 0 points",
    }


def test_a_row_missing_a_value_without_a_default_is_refused_with_its_line_and_nothing_is_published(
    backend, simulator, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    path = tmp_path / "r.csv"
    path.write_text("to,name\n9000000001,Asha\n9000000002,Ravi\n9000000003,\n")

    with pytest.raises(SpecError, match=r"line 4: no value for \{name\}"):
        publish_file(backend, None, settings, path, "Hi {name}")
    assert backend.client.keys("campaign:*") == []


@pytest.mark.parametrize("body", ["{name|}", "{name| }"])
def test_a_row_whose_message_is_empty_once_filled_in_is_refused(backend, make_settings, tmp_path, body):
    path = tmp_path / "r.csv"
    path.write_text("to,name\n9000000001,Asha\n9000000002,\n")
    with pytest.raises(SpecError, match=r"line 3: the message is empty once filled in"):
        publish_file(backend, None, make_settings("http://127.0.0.1:9"), path, body)


def test_the_suppression_list_holds_marketing_back_but_not_an_otp(
    backend, simulator, start_worker, make_settings
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    suppression.add(backend.client, settings.sid, ["+919000000001"], None)
    spec = build_spec(settings=settings, sender="KLRHXA", type="OTP", body="Code 1234")
    publish_campaign(spec, [(2, "+919000000001")], client=backend.client, broker=broker, settings=settings)
    assert wait_completed(backend, spec.campaign_id).submitted == 1


def test_suppressed_numbers_are_not_sent_and_are_counted_and_reported(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    suppression.add(backend.client, settings.sid, ["09000000002", "+91 90000 00004"], "+91")
    path = tmp_path / "r.csv"
    path.write_text("to\n" + "".join(f"900000000{i}\n" for i in range(1, 6)))

    spec, result = publish_file(backend, broker, settings, path, "Sale today")
    status = wait_completed(backend, spec.campaign_id)

    assert (result.total, result.suppressed) == (3, 2)
    assert (status.total, status.submitted, status.suppressed) == (3, 3, 2)
    assert sorted(m.to for m in simulator.record.messages) == [
        "+919000000001",
        "+919000000003",
        "+919000000005",
    ]
    rows = {row.number: row for row in report_rows(backend.client, spec.campaign_id, full_numbers=True)}
    assert {n: r.outcome for n, r in rows.items() if r.outcome == "suppressed"} == {
        "+919000000002": "suppressed",
        "+919000000004": "suppressed",
    }
    assert rows["+919000000004"].line == 5


def test_numbers_suppressed_after_publishing_are_not_sent_and_fail_with_a_code_of_their_own(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    path = tmp_path / "r.csv"
    path.write_text("to\n" + "".join(f"900000000{i}\n" for i in range(1, 6)))
    spec, _ = publish_file(backend, build_broker(settings, backend.client), settings, path, "Sale today")

    suppression.add(backend.client, settings.sid, ["+919000000002", "+919000000005"], None)  # opted out since
    start_worker(settings)
    status = wait_completed(backend, spec.campaign_id)

    assert (status.submitted, status.failed, status.failures, status.suppressed) == (
        3,
        2,
        {"SUPPRESSED": 2},
        0,
    )
    assert sorted(m.to for m in simulator.record.messages) == [
        "+919000000001",
        "+919000000003",
        "+919000000004",
    ]
    late = {r.number: r.code for r in report_rows(backend.client, spec.campaign_id, full_numbers=True)
            if r.outcome == "failed"}  # fmt: skip
    assert late == {"+919000000002": "SUPPRESSED", "+919000000005": "SUPPRESSED"}
    # Opted out is not a failure to retry.
    again = resend(backend.client, build_broker(settings, backend.client), settings, spec.campaign_id,
                   failed=True, unknown=False)  # fmt: skip
    assert again.republished == 0


def test_the_report_has_one_row_per_recipient_with_the_message_ids_the_gateway_gave(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url, chunk_size=2)  # several chunks per job
    broker = start_worker(settings)
    path = tmp_path / "r.csv"
    path.write_text(
        "to\n9000000001\n9000000002\nnot-a-number\n9000000003\n09000000001\n9000000004\n9000000005\n"
    )

    spec, _ = publish_file(backend, broker, settings, path, "Hello")
    wait_completed(backend, spec.campaign_id)

    rows = list(report_rows(backend.client, spec.campaign_id))
    gateway_ids = {m.message_id for m in simulator.record.messages}
    submitted = [r for r in rows if r.outcome == "submitted"]
    assert len(submitted) == 5 and {r.message_id for r in submitted} == gateway_ids
    assert [r.line for r in submitted] == [2, 3, 5, 7, 8]
    assert all("*" in r.number for r in rows)  # masked unless asked
    [invalid] = [r for r in rows if r.outcome == "invalid"]
    assert (invalid.line, invalid.code) == (4, "has letters")


def test_a_dry_run_counts_segments_and_encodings_and_publishes_nothing(backend, make_settings, tmp_path):
    settings = make_settings("http://127.0.0.1:9")
    suppression.add(backend.client, settings.sid, ["9000000003"], "+91")
    path = tmp_path / "r.csv"
    path.write_text("to,name\n9000000001,Asha\n9000000002,Ωmega\n9000000003,Ravi\n9000000001,Asha\n")
    body = "Dear {name}, " + "x" * 150  # 155+ characters: two GSM-7 segments, three as UCS-2

    _, result = publish_file(backend, None, settings, path, body, dry_run=True)

    assert (result.total, result.duplicates, result.suppressed, result.state) == (2, 1, 1, "estimate")
    assert result.encodings == {"GSM-7": 2}  # Ω is in the GSM-7 alphabet
    assert result.segments == 4
    assert backend.client.keys("campaign:*") == []
    assert backend.client.scard(keys.suppression_list(settings.sid)) == 1
