"""`campaign serve`'s campaigns over HTTP: a recipients file streamed as the body (or a multipart part
beside the spec as JSON), published or refused with its line and nothing published; the list, one's
status, pause, resume and cancel."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from campaign.service.config import ServiceConfig
from redis_model import keys, records
from redis_model.api_keys import ApiKeyStore
from tests.integration.http_served import Served, serving

SPEC = {"sender": "KLRHXA", "type": "MKT", "body": "Hi {name|there}, our sale starts today", "prefix": "+91"}
CSV = b"to,name\n9812345678,Asha\n9812345679,Ravi\n9812345678,Asha again\n12,Bad\n"
CSV_TYPE = {"Content-Type": "text/csv"}


@pytest.fixture
def served(backend, make_settings) -> Iterator[Served]:
    _, key = ApiKeyStore(backend.client).create("marketing")
    with serving(backend, make_settings("http://127.0.0.1:9")) as running:
        running.key = key
        yield running


def publish(served: Served, data: bytes = CSV, headers=CSV_TYPE, **spec):
    return served.call("POST", "/v1/campaigns?" + urlencode(SPEC | spec), data=data, headers=headers)


def error_of(answer) -> dict:
    assert set(answer.body) == {"error"}, answer.body
    return answer.body["error"]


def test_a_csv_body_is_published_and_answers_send_json_fields(served):
    answer = publish(served)

    assert answer.status == 201
    assert {k: answer.body[k] for k in ("total", "invalid", "duplicates", "state")} == {
        "total": 2, "invalid": 1, "duplicates": 1, "state": "queued",
    }  # fmt: skip
    status = served.call("GET", f"/v1/campaigns/{answer.body['campaign_id']}")
    assert status.status == 200
    assert status.body["campaign_id"] == answer.body["campaign_id"] and status.body["total"] == 2


def test_a_json_lines_body_is_read_as_json_lines(served):
    data = b'{"to": "9812345678", "name": "Asha"}\n{"to": "9812345679"}\n'

    answer = publish(served, data, {"Content-Type": "application/x-ndjson"})

    assert answer.status == 201 and answer.body["total"] == 2


def test_a_dry_run_counts_and_publishes_nothing(served):
    answer = publish(served, dry_run="true")

    assert answer.status == 200 and answer.body["state"] == "estimate"
    assert "campaign_id" not in answer.body  # nothing was published under one
    assert served.call("GET", "/v1/campaigns").body == {"campaigns": []}


def test_a_refused_file_is_400_with_its_line_and_nothing_is_published(served, backend):
    data = b'{"to": "9812345678"}\n{"to": "9812345679"}\nnot json\n'

    answer = publish(served, data, {"Content-Type": "application/x-ndjson"})

    assert answer.status == 400
    error = error_of(answer)
    assert error["code"] == "invalid_recipients" and error["line"] == 3
    assert "the request body" in error["message"] and "/tmp" not in error["message"]
    assert served.call("GET", "/v1/campaigns").body == {"campaigns": []}
    assert backend.client.keys("campaign:*") == []


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"type": "XYZ"}, "type"),
        ({"expires_in": "soon"}, "expires_in"),
        ({"colour": "red"}, "colour"),
        ({"flash": "maybe"}, "flash"),
    ],
)
def test_a_refused_option_is_400_before_the_body_is_read(served, spec, field):
    answer = publish(served, **spec)

    assert answer.status == 400 and error_of(answer).get("field") == field


def test_a_missing_option_names_it(served):
    answer = served.call("POST", "/v1/campaigns?sender=KLRHXA&type=MKT", data=CSV, headers=CSV_TYPE)

    assert answer.status == 400 and error_of(answer)["field"] == "body"


def test_a_body_that_is_not_a_recipients_file_is_415(served):
    answer = publish(served, b"<xml/>", {"Content-Type": "application/xml"})

    assert answer.status == 415 and error_of(answer)["code"] == "unsupported_media_type"


def test_a_file_over_the_upload_limit_is_413_and_nothing_is_published(backend, make_settings):
    _, key = ApiKeyStore(backend.client).create("marketing")
    config = ServiceConfig(max_upload_bytes=64)
    with serving(backend, make_settings("http://127.0.0.1:9"), config) as served:
        served.key = key
        answer = publish(served, CSV * 10)
        listed = served.call("GET", "/v1/campaigns").body

    assert answer.status == 413 and error_of(answer)["code"] == "payload_too_large"
    assert listed == {"campaigns": []}


def test_campaigns_are_listed_newest_first_up_to_the_limit(served):
    ids = [publish(served).body["campaign_id"] for _ in range(3)]

    listed = served.call("GET", "/v1/campaigns?limit=2")

    assert [c["campaign_id"] for c in listed.body["campaigns"]] == ids[::-1][:2]
    assert served.call("GET", "/v1/campaigns?limit=0").status == 400
    assert error_of(served.call("GET", "/v1/campaigns?limit=x"))["field"] == "limit"


def test_campaigns_are_listed_by_state(served):
    paused, queued = (publish(served).body["campaign_id"] for _ in range(2))
    served.call("POST", f"/v1/campaigns/{paused}/pause")

    def listed_in(state: str) -> list[str]:
        answer = served.call("GET", f"/v1/campaigns?state={state}")
        return [c["campaign_id"] for c in answer.body["campaigns"]]

    listed = {state: listed_in(state) for state in ("paused", "queued", "running")}

    assert listed == {"paused": [paused], "queued": [queued], "running": []}
    assert error_of(served.call("GET", "/v1/campaigns?state=sent"))["field"] == "state"


def test_a_campaign_is_paused_resumed_and_cancelled(served):
    campaign_id = publish(served).body["campaign_id"]

    steps = [
        served.call("POST", f"/v1/campaigns/{campaign_id}/{action}")
        for action in ("pause", "resume", "cancel")
    ]

    assert [(a.status, a.body["state"]) for a in steps] == [
        (200, "paused"),
        (200, "queued"),
        (200, "cancelled"),
    ]
    assert served.call("GET", f"/v1/campaigns/{campaign_id}").body["state"] == "cancelled"


def test_a_move_the_state_forbids_is_409(served):
    campaign_id = publish(served).body["campaign_id"]
    served.call("POST", f"/v1/campaigns/{campaign_id}/cancel")

    answer = served.call("POST", f"/v1/campaigns/{campaign_id}/pause")

    assert answer.status == 409 and error_of(answer)["code"] == "state_conflict"


@pytest.mark.parametrize(
    "path", ["/v1/campaigns/nope", "/v1/campaigns/nope/pause", "/v1/campaigns/nope/cancel"]
)
def test_an_unknown_campaign_is_404(served, path):
    answer = served.call("POST" if path.count("/") == 4 else "GET", path)

    assert answer.status == 404 and error_of(answer)["code"] == "not_found"


def multipart(parts: list[tuple[str, str | None, str | None, bytes]]) -> tuple[bytes, dict[str, str]]:
    """A multipart/form-data body of (name, filename, content type, data) parts."""
    boundary = "campaign-test-boundary"
    body = b""
    for name, filename, content_type, data in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        headers = f"Content-Disposition: {disposition}\r\n"
        headers += f"Content-Type: {content_type}\r\n" if content_type else ""
        body += f"--{boundary}\r\n{headers}\r\n".encode() + data + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), {
        "Content-Type": f"multipart/form-data; boundary={boundary}"
    }


def post_parts(served: Served, parts, query: str = ""):
    data, headers = multipart(parts)
    return served.call("POST", "/v1/campaigns" + query, data=data, headers=headers)


# 1,621 characters of Devanagari: 4,033 bytes as UTF-8, 11,282 percent-encoded in a URL, past
# aiohttp's default 8,190-byte request line (the service reads 64 KiB: any body, 4,000 characters at most).
LONG_BODY = "नमस्ते {name|there}, " + "आज बड़ी सेल है। " * 100


@pytest.mark.parametrize("form", ["query", "multipart"])
def test_a_long_unicode_body_is_published_in_the_query_or_as_a_spec_part(served, backend, form):
    spec = SPEC | {"body": LONG_BODY, "unicode": "1", "name": "Diwali"}
    if form == "query":
        assert len(urlencode(spec)) > 8190
        answer = publish(served, body=LONG_BODY, unicode="1", name="Diwali")
    else:
        recipients = ("recipients", "list.csv", "text/csv", CSV)
        answer = post_parts(
            served, [("spec", None, "application/json", json.dumps(spec).encode()), recipients]
        )

    assert answer.status == 201, answer.body
    assert {k: answer.body[k] for k in ("total", "invalid", "duplicates")} == {
        "total": 2,
        "invalid": 1,
        "duplicates": 1,
    }
    stored = records.decode_spec(backend.client.hget(keys.campaign(answer.body["campaign_id"]), keys.SPEC))
    assert stored.body == LONG_BODY and stored.name == "Diwali"


def test_a_multipart_recipients_part_is_told_by_its_type_or_its_name(served):
    spec = ("spec", None, None, json.dumps(SPEC).encode())
    jsonl = b'{"to": "9812345678"}\n{"to": "9812345679"}\n'

    by_name = post_parts(served, [spec, ("recipients", "people.jsonl", "application/octet-stream", jsonl)])
    by_type = post_parts(served, [spec, ("recipients", None, "application/x-ndjson", jsonl)])
    neither = post_parts(served, [spec, ("recipients", "people.xlsx", None, jsonl)])

    assert (by_name.status, by_name.body["total"]) == (201, 2)
    assert (by_type.status, by_type.body["total"]) == (201, 2)
    assert neither.status == 415 and "people.xlsx" in error_of(neither)["message"]


@pytest.mark.parametrize(
    "parts, query, status, wanted",
    [
        ([("recipients", "a.csv", "text/csv", CSV)], "", 400, "no `spec` part"),
        ([("spec", None, None, json.dumps(SPEC).encode())], "", 400, "no `recipients` part"),
        ([("spec", None, None, b"{not json")], "", 400, "`spec` part is not valid JSON"),
        ([("spec", None, None, b"[" * 60_000)], "", 400, "Expected `object`"),
        ([("spec", None, None, b'{"body": ' + b"[" * 60_000)], "", 400, "Expected `str`"),
        ([("spec", None, None, b" " * 70_000)], "", 413, "over 65536 bytes"),
        ([("spec", None, None, json.dumps(SPEC | {"type": "XYZ"}).encode())], "", 400, "'XYZ'"),
        ([("spec", None, None, json.dumps(SPEC | {"colour": "red"}).encode())], "", 400, "colour"),
        (
            [("spec", None, None, json.dumps(SPEC).encode()), ("spec", None, None, b"{}")],
            "",
            400,
            "two parts",
        ),
        ([("other", None, None, b"x")], "", 400, "'other'"),
        (
            [("recipients", "a.csv", "text/csv", CSV), ("spec", None, None, json.dumps(SPEC).encode())],
            "",
            400,
            "before `recipients`",
        ),
        (
            [("spec", None, None, b'{"sender": "KLRHXA", "type": "MKT", "body": "caf\xe9"}')],
            "",
            400,
            "not UTF-8",
        ),
        ([("spec", None, None, json.dumps(SPEC).encode())], "?sender=KLRHXA", 400, "not both"),
    ],
)
def test_a_bad_multipart_body_is_refused_naming_what_is_wrong_and_nothing_is_published(
    served, parts, query, status, wanted
):
    answer = post_parts(served, parts, query)

    assert answer.status == status and wanted in error_of(answer)["message"], answer.body
    assert served.call("GET", "/v1/campaigns").body == {"campaigns": []}


def test_a_multipart_body_that_is_not_one_is_a_400(served):
    answer = served.call(
        "POST",
        "/v1/campaigns",
        data=b"no parts here",
        headers={"Content-Type": "multipart/form-data; boundary=zz"},
    )
    assert answer.status == 400 and set(answer.body) == {"error"}


@pytest.mark.parametrize(
    "query, field, wanted",
    [
        ("sender=KLRHXA&type=TXN&body=caf%E9%20ok", "body", "body is not UTF-8"),  # Latin-1's é
        ("sender=KLRHXA&type=TXN&body=Hi&sender=OTHERS", "sender", "sender is given twice"),
        ("sender=KLRHXA&type=TXN&body=Hi&na%FFme=x", "na\ufffdme", "is not UTF-8"),
    ],
)
def test_a_query_not_utf8_or_with_a_name_twice_is_refused_naming_it(served, query, field, wanted):
    answer = served.call("POST", f"/v1/campaigns?{query}", data=CSV, headers=CSV_TYPE)

    assert (
        answer.status == 400 and error_of(answer)["field"] == field and wanted in error_of(answer)["message"]
    )
    assert served.call("GET", "/v1/campaigns").body == {"campaigns": []}


def test_a_utf8_query_reaches_the_spec_as_sent(served, backend):
    answer = served.call("POST", "/v1/campaigns?sender=KLRHXA&type=TXN&body=caf%C3%A9+ok%2B1&prefix=%2B91",
                         data=CSV, headers=CSV_TYPE)  # fmt: skip

    assert answer.status == 201
    stored = records.decode_spec(backend.client.hget(keys.campaign(answer.body["campaign_id"]), keys.SPEC))
    assert stored.body == "café ok+1"
