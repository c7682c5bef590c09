"""Kaleyra's delivery statuses and traces, as the store ranks and keeps them."""

from __future__ import annotations

import pytest

from schemas.delivery import (
    KNOWN_TRACES,
    OPTED_OUT_TRACES,
    OTHER_TRACE,
    TEMPORARY_TRACES,
    DeliveryStatus,
    delivery_status,
    trace_code,
    trace_of,
)


@pytest.mark.parametrize(
    ("word", "status"),
    [("Delivered", DeliveryStatus.DELIVERED), ("DELIVRD", DeliveryStatus.DELIVERED),
     ("UnDelivered", DeliveryStatus.UNDELIVERED), ("UNDELIV", DeliveryStatus.UNDELIVERED),
     ("EXPIRED", DeliveryStatus.UNDELIVERED), ("Failed", DeliveryStatus.FAILED),
     ("NOT-SENT", DeliveryStatus.FAILED), ("NotSent", DeliveryStatus.FAILED), ("Sent", DeliveryStatus.SENT),
     (" queued ", DeliveryStatus.SENT), ("something new", DeliveryStatus.SENT)],
)  # fmt: skip
def test_kaleyras_words_map_to_a_status_and_an_unknown_one_is_not_final(word, status):
    assert delivery_status(word) is status


def test_statuses_rank_by_how_final_they_are():
    assert not DeliveryStatus.SENT.final and DeliveryStatus.NONE < DeliveryStatus.SENT
    assert all(s.final for s in (DeliveryStatus.DELIVERED, DeliveryStatus.UNDELIVERED, DeliveryStatus.FAILED))


def test_every_known_trace_round_trips_through_its_byte_and_others_read_as_other():
    for trace in KNOWN_TRACES:
        # The status query's DELIVERED is the reports' DELIVRD: one trace for a delivered message.
        assert trace_of(trace_code(trace)) == ("DELIVRD" if trace == "DELIVERED" else trace)
        assert 0 < trace_code(trace) < OTHER_TRACE
    assert trace_of(KNOWN_TRACES.index("DELIVERED") + 1) == "DELIVERED"  # as bytes stored before read
    assert trace_code(" mob-off ") == trace_code("MOB-OFF")
    assert trace_code("") == 0 and trace_of(0) == ""
    assert trace_code("NEW-CODE") == OTHER_TRACE and trace_of(OTHER_TRACE) == "OTHER"


def test_the_traces_that_act_are_known_and_apart():
    assert set(KNOWN_TRACES) >= OPTED_OUT_TRACES and set(KNOWN_TRACES) >= TEMPORARY_TRACES
    assert not OPTED_OUT_TRACES & TEMPORARY_TRACES
