"""A chunk's `sms.submitted` events: one structlog call, one JSON line per message id."""

from __future__ import annotations

import io
import logging

import msgspec
import pytest

from worker.logging import configure_logging, flush_events, log_submitted


@pytest.fixture
def stream():
    out = io.BytesIO()
    configure_logging(out)
    yield out
    configure_logging(io.BytesIO())


def _lines(stream: io.BytesIO) -> list[bytes]:
    flush_events()
    return stream.getvalue().splitlines()


def test_each_message_id_gets_its_own_line_with_the_chunks_context(stream):
    log_submitted(["m:1", "m:2", "m:3"], ["+91******0001", "+91******0002", "+91******0003"],
                  campaign_id="c1", job=4, offset=2000)  # fmt: skip
    events = [msgspec.json.decode(line) for line in _lines(stream)]
    assert [(e["message_id"], e["recipient"]) for e in events] == [
        ("m:1", "+91******0001"), ("m:2", "+91******0002"), ("m:3", "+91******0003"),
    ]  # fmt: skip
    for event in events:
        assert event["event"] == "sms.submitted" and event["level"] == "info"
        assert (event["campaign_id"], event["job"], event["offset"]) == ("c1", 4, 2000)
    assert len({e["ts"] for e in events}) == 1, "a chunk's events share the time its reply came"


def test_the_keys_come_in_the_order_a_call_per_event_gave_them(stream):
    log_submitted(["m:1"], ["+91******0001"], campaign_id="c1", job=0, offset=0)
    (line,) = _lines(stream)
    assert list(msgspec.json.decode(line)) == [
        "campaign_id", "job", "offset", "message_id", "recipient", "event", "level", "ts",
    ]  # fmt: skip


def test_an_empty_chunk_writes_nothing_and_other_events_are_untouched(stream):
    log_submitted([], [], campaign_id="c1", job=0, offset=0)
    log_submitted(["m:1"], ["+91******0001"], campaign_id="c1", job=0, offset=0, attempt=2)
    lines = _lines(stream)
    assert len(lines) == 1
    assert msgspec.json.decode(lines[0])["attempt"] == 2


def test_a_level_above_info_drops_the_events():
    out = io.BytesIO()
    configure_logging(out, level=logging.WARNING)
    try:
        log_submitted(["m:1"], ["+91******0001"], campaign_id="c1", job=0, offset=0)
        flush_events()
        assert out.getvalue() == b""
    finally:
        configure_logging(io.BytesIO())
