"""A chunk's `sms.submitted` events: one structlog call, one JSON line per message id."""

from __future__ import annotations

import io
import logging

import msgspec
import pytest
import structlog

from schemas.kaleyra import SubmittedSms
from worker import logging as worker_logging
from worker.logging import (
    SubmittedMessage,
    configure_logging,
    flush_events,
    log_messages_submitted,
    log_submitted,
)


@pytest.fixture
def stream():
    out = io.BytesIO()
    configure_logging(out)
    yield out
    configure_logging(io.BytesIO())


def _accepted(count: int) -> list[SubmittedSms]:
    return [SubmittedSms(message_id=f"m:{i}", recepient=f"91987654{i:04d}") for i in range(count)]


def _lines(stream: io.BytesIO) -> list[bytes]:
    flush_events()
    return stream.getvalue().splitlines()


def test_each_message_id_gets_its_own_line_with_the_chunks_context_and_a_masked_number(stream):
    log_submitted(_accepted(3), campaign_id="c1", job=4, offset=2000)
    events = [msgspec.json.decode(line) for line in _lines(stream)]
    assert [(e["message_id"], e["recipient"]) for e in events] == [
        ("m:0", "+91******0000"), ("m:1", "+91******0001"), ("m:2", "+91******0002"),
    ]  # fmt: skip
    for event in events:
        assert event["event"] == "sms.submitted" and event["level"] == "info"
        assert (event["campaign_id"], event["job"], event["offset"]) == ("c1", 4, 2000)
    assert len({e["ts"] for e in events}) == 1, "a chunk's events share the time its reply came"


def test_each_event_names_its_recipient_s_line_or_null_when_the_reply_could_not_be_matched(stream):
    log_submitted(_accepted(3), lines=[12, None, 40], campaign_id="c1", job=0, offset=0)
    assert [msgspec.json.decode(line)["line"] for line in _lines(stream)] == [12, None, 40]


def test_full_numbers_are_logged_only_when_asked(stream):
    log_submitted(_accepted(1), full_numbers=True, campaign_id="c1", job=0, offset=0)
    (line,) = _lines(stream)
    assert msgspec.json.decode(line)["recipient"] == "+919876540000"


# Kaleyra's usual ids and numbers are written as they are; the others need msgspec's escaping.
_ODD_REPLIES = {
    "plain": _accepted(2),
    "quote and backslash in ids": [SubmittedSms(message_id='m"1', recepient="919876540000"),
                                   SubmittedSms(message_id="m\\2", recepient="919876540001")],
    "control character": [SubmittedSms(message_id="m\n1", recepient="919876540000")],
    "not ASCII": [SubmittedSms(message_id="mé", recepient="919876540000")],
    "numbers of mixed shapes": [SubmittedSms(message_id="m1", recepient="+919876540000"),
                                SubmittedSms(message_id="m2", recipient="4479111234"),
                                SubmittedSms(message_id="m3", recepient="12345")],
}  # fmt: skip


@pytest.mark.parametrize("accepted", _ODD_REPLIES.values(), ids=_ODD_REPLIES.keys())
def test_the_lines_are_those_a_structlog_call_per_event_writes_but_for_the_shared_time(stream, accepted):
    rows = [None if i == 1 else 2 + i for i in range(len(accepted))]  # one recipient not matched
    log_submitted(accepted, lines=rows, campaign_id="c1", job=7, offset=1000)
    batched = _lines(stream)

    one_by_one = io.BytesIO()
    per_event = structlog.wrap_logger(
        worker_logging._BufferedLogger(one_by_one),
        processors=[worker_logging._level_and_timestamp, worker_logging._render],
    ).bind(campaign_id="c1", job=7, offset=1000)
    for sms, line in zip(accepted, rows, strict=True):
        masked = worker_logging.mask_numbers([sms.number])[0]
        per_event.info("sms.submitted", message_id=sms.message_id, recipient=masked, line=line)

    def without_time(line: bytes) -> list[tuple[str, object]]:
        return [(key, value) for key, value in msgspec.json.decode(line).items() if key != "ts"]

    assert [without_time(line) for line in batched] == [
        without_time(line) for line in one_by_one.getvalue().splitlines()
    ]  # same keys, same order, same values


def test_an_empty_chunk_writes_nothing(stream):
    log_submitted([], campaign_id="c1", job=0, offset=0)
    assert _lines(stream) == []


def test_a_level_above_info_drops_the_events():
    out = io.BytesIO()
    configure_logging(out, level=logging.WARNING)
    try:
        log_submitted(_accepted(1), campaign_id="c1", job=0, offset=0)
        flush_events()
        assert out.getvalue() == b""
    finally:
        configure_logging(io.BytesIO())


def test_before_logging_is_configured_each_message_is_still_an_event_of_its_own(monkeypatch):
    calls = []

    class Recording:
        def info(self, event, **fields):
            calls.append((event, fields))

    monkeypatch.setattr(worker_logging, "_stream", None)
    monkeypatch.setattr(worker_logging, "_message_events", Recording())
    log_submitted(_accepted(2), lines=[7, 9], campaign_id="c1", job=0, offset=0)
    assert calls == [
        ("sms.submitted", {"campaign_id": "c1", "job": 0, "offset": 0, "message_id": f"m:{i}",
                           "recipient": f"+91******000{i}", "line": line})
        for i, line in enumerate([7, 9])
    ]  # fmt: skip


def test_a_chunk_without_context_starts_each_line_with_its_message_id(stream):
    log_submitted(_accepted(2))
    lines = _lines(stream)
    assert [line.split(b",")[0] for line in lines] == [b'{"message_id":"m:0"', b'{"message_id":"m:1"']
    assert [msgspec.json.decode(line)["recipient"] for line in lines] == ["+91******0000", "+91******0001"]


_SINGLE = [
    SubmittedMessage("k:1", "txn-1-0", "order-1", "+919876540000"),
    SubmittedMessage("k:2", "txn-1-1", None, "+919876540001"),
    SubmittedMessage("k:3", "txn-1-2", 'quote " and é\n', "+4479111234"),
]


def test_a_requests_single_messages_are_the_lines_an_event_each_writes_but_for_the_shared_time(stream):
    log_messages_submitted(_SINGLE)
    batched = _lines(stream)

    one_by_one = io.BytesIO()
    per_event = structlog.wrap_logger(
        worker_logging._BufferedLogger(one_by_one),
        processors=[worker_logging._level_and_timestamp, worker_logging._render],
    )
    for one in _SINGLE:
        per_event.info("sms.submitted", message_id=one.message_id, message=one.message,
                       reference=one.reference, recipient=worker_logging.mask_number(one.number))  # fmt: skip

    def without_time(line: bytes) -> list[tuple[str, object]]:
        return [(key, value) for key, value in msgspec.json.decode(line).items() if key != "ts"]

    assert [without_time(line) for line in batched] == [
        without_time(line) for line in one_by_one.getvalue().splitlines()
    ]
    assert [msgspec.json.decode(line)["recipient"] for line in batched] == [
        "+91******0000", "+91******0001", "+44****1234",
    ]  # fmt: skip
    assert len({msgspec.json.decode(line)["ts"] for line in batched}) == 1


def test_single_messages_show_full_numbers_only_when_asked(stream):
    log_messages_submitted(_SINGLE[:1], full_numbers=True)
    (line,) = _lines(stream)
    assert msgspec.json.decode(line)["recipient"] == "+919876540000"


def test_before_logging_is_configured_each_single_message_is_an_event_of_its_own(monkeypatch):
    calls = []

    class Recording:
        def info(self, event, **fields):
            calls.append((event, fields))

    monkeypatch.setattr(worker_logging, "_stream", None)
    monkeypatch.setattr(worker_logging, "_single_events", Recording())
    log_messages_submitted(_SINGLE[:2])
    assert calls == [
        ("sms.submitted", {"message_id": "k:1", "message": "txn-1-0", "reference": "order-1",
                           "recipient": "+91******0000"}),
        ("sms.submitted", {"message_id": "k:2", "message": "txn-1-1", "reference": None,
                           "recipient": "+91******0001"}),
    ]  # fmt: skip
