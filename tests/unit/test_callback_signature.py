"""A callback's signature: what a receiver checks (the body, the secret, the time), and the body as the
events stored by the data model's scripts render it."""

from __future__ import annotations

import hashlib
import hmac

import msgspec

from schemas.callback import render_body, signature, verify_signature

SECRET = "s3cret"
BODY = b'{"events":[{"event":"message.status","status":"submitted","at":1765000000.0}]}'
NOW = 1_765_000_000


def test_the_signature_is_an_hmac_of_the_time_and_the_body():
    header = signature(SECRET, BODY, at=NOW)
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={NOW},v1={expected}"
    assert verify_signature(SECRET, header, BODY, now=NOW + 10)


def test_a_changed_body_another_secret_an_old_time_or_a_mangled_header_do_not_verify():
    header = signature(SECRET, BODY, at=NOW)
    assert not verify_signature(SECRET, header, BODY.replace(b"submitted", b"delivered"), now=NOW)
    assert not verify_signature("other", header, BODY, now=NOW)
    assert not verify_signature(SECRET, header, BODY, now=NOW + 301)  # replayed after the tolerance
    assert verify_signature(SECRET, header, BODY, now=NOW + 299)
    for mangled in (
        "",
        "t=abc,v1=00",
        f"t={NOW}",
        "v1=" + header.split("v1=")[1],
        header.replace("t=", "t=1"),
        f"t={NOW},v1=\u00e9",
        "t=\u00b2,v1=00",
        f"t={NOW},v1=\u0663",
    ):
        assert not verify_signature(SECRET, mangled, BODY, now=NOW)  # False, never an exception


def test_stored_delivery_events_render_with_words_and_keep_the_rest():
    stored = msgspec.json.encode([
        {"event": "message.status", "message_id": "r-1:0", "status": 2, "trace_code": 1, "at": NOW,
         "campaign_id": "c1"},
        {"event": "message.status", "message_id": "r-1:1", "status": 4, "trace_code": 255, "at": NOW,
         "id": "txn-1-0", "reference": "order-7"},
        {"event": "message.status", "status": "failed", "code": "E413", "at": NOW, "id": "txn-2-0"},
        {"event": "campaign.status", "campaign_id": "c1", "state": "completed", "at": NOW, "total": 3,
         "submitted": 2, "failed": 1, "unknown": 0, "cancelled": 0},
    ])  # fmt: skip
    assert msgspec.json.decode(render_body("1765000000-7", stored)) == {"id": "1765000000-7", **{"events": [
        {"event": "message.status", "status": "delivered", "at": NOW, "campaign_id": "c1",
         "message_id": "r-1:0", "trace": "DELIVRD"},
        {"event": "message.status", "status": "undelivered", "at": NOW, "id": "txn-1-0",
         "reference": "order-7", "message_id": "r-1:1", "trace": "OTHER"},
        {"event": "message.status", "status": "failed", "at": NOW, "id": "txn-2-0", "code": "E413"},
        {"event": "campaign.status", "campaign_id": "c1", "state": "completed", "at": NOW, "total": 3,
         "submitted": 2, "failed": 1, "unknown": 0, "cancelled": 0},
    ]}}  # fmt: skip
