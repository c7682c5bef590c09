"""A number on the suppression list is found in whatever form it is written, in the list, at publish
and at send, on fakeredis and Redis."""

from __future__ import annotations

import pytest

from producer import suppression
from producer.numbers import NumberNormaliser
from producer.publish import publish_file
from producer.report import report_rows
from producer.spec import build_spec
from redis_model import keys
from tests.integration.test_campaign_flow import wait_completed
from worker.broker import build_broker

SID = "HXTEST0000IN"
# One German mobile as people and spreadsheets write it, and as libphonenumber reads it.
FORMS = [
    "+49 (0)15123456789",
    "+4915123456789",
    "0049 151 23456789",
    "015123456789",
    "0151/234 567 89",
    "0151\u201323456789",
    "\uff0b\uff14\uff19 151 2345 6789",
    "4915123456789",
    "'+49\u00a0151\u00a023456789",
]


@pytest.mark.parametrize("listed", FORMS)
def test_a_number_listed_in_one_form_is_found_in_every_other(backend, listed):
    assert suppression.add(backend.client, SID, [listed], "+49") == 1
    for other in FORMS:
        assert suppression.add(backend.client, SID, [other], "+49") == 0, other  # already listed
    assert suppression.count(backend.client, SID) == 1
    assert backend.client.sismember(keys.suppression_list(SID), NumberNormaliser("+49").normalise(FORMS[3]))


def test_a_number_listed_in_one_form_is_removed_by_another(backend):
    suppression.add(backend.client, SID, ["+49 (0)15123456789"], None)
    assert suppression.remove(backend.client, SID, ["0151 234 567 89"], "+49") == 1
    assert suppression.count(backend.client, SID) == 0


def publish_uk_list(backend, broker, settings, tmp_path):
    """An MKT campaign to two UK mobiles written nationally, with --prefix +44, from a file."""
    path = tmp_path / "r.csv"
    path.write_text("to\n07911123456\n07911 123457\n07911123458\n")
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Sale today", prefix="+44")
    return spec, publish_file(spec, str(path), client=backend.client, broker=broker, settings=settings)


def test_a_number_listed_in_one_form_is_left_out_at_publish_when_the_list_has_another(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    broker = start_worker(settings)
    suppression.add(backend.client, settings.sid, ["+44 (0)7911 123456"], None)

    spec, result = publish_uk_list(backend, broker, settings, tmp_path)
    status = wait_completed(backend, spec.campaign_id)

    assert (result.total, result.suppressed, status.suppressed) == (2, 1, 1)
    assert sorted(m.to for m in simulator.record.messages) == ["+447911123457", "+447911123458"]


def test_a_number_listed_after_publish_in_another_form_is_not_sent(
    backend, simulator, start_worker, make_settings, tmp_path
):
    settings = make_settings(simulator.base_url)
    spec, result = publish_uk_list(backend, build_broker(settings, backend.client), settings, tmp_path)
    assert result.suppressed == 0

    suppression.add(backend.client, settings.sid, ["0044 (0)7911-123457"], None)  # opted out since
    start_worker(settings)
    status = wait_completed(backend, spec.campaign_id)

    assert (status.submitted, status.failures) == (2, {"SUPPRESSED": 1})
    assert sorted(m.to for m in simulator.record.messages) == ["+447911123456", "+447911123458"]
    failed = {r.number: r.code for r in report_rows(backend.client, spec.campaign_id, full_numbers=True)
              if r.outcome == "failed"}  # fmt: skip
    assert failed == {"+447911123457": "SUPPRESSED"}
