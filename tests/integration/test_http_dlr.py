"""`campaign serve`'s delivery-report receiver, `/v1/dlr/kaleyra`, served for real: the shapes a callback
profile (and the simulator) sends, the shared secret, the field map, timestamps, every refusal as
`{"error": ...}`, and 2xx only once the store's `record` returned."""

from __future__ import annotations

import asyncio
import functools
import json
import time
from calendar import timegm
from collections.abc import Callable, Iterator, Sequence
from typing import Any
from urllib.parse import urlencode

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given, settings

from campaign.service import app as service_app
from campaign.service.config import ServiceConfig
from campaign.service.dlr_config import DLR_PATH, DlrConfig, parse_fields
from ops.simulator import RunningSimulator, SimulatorConfig, start_in_thread
from redis_model.delivery import AsyncDeliveryReports
from schemas.delivery import DeliveryReport, DeliveryStatus, delivery_status
from schemas.errors import SettingsError
from tests.integration import http_served
from tests.integration.http_served import Answer, Served, serving
from tests.integration.test_simulator_dlr import API_KEY, SID, fast, send, settled

TOKEN = "dlr-s3cret-0123456789"
MESSAGE_ID = "ee8a1b2c3d4e5f60718293a4b5c6d30d:1"
DELIVERED = {
    "id": MESSAGE_ID,
    "status": "Delivered",
    "status_trace": "DELIVRD",
    "timestamp": "2025-04-17 18:35:20",
}
AT = float(timegm((2025, 4, 17, 18, 35, 20)))  # 2025-04-17 18:35:20 UTC
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
WITH_TOKEN = {"X-Dlr-Token": TOKEN}


class FakeStore:
    """`AsyncDeliveryReports`' interface in memory: a call is kept once it returns, after a pause, so
    that an answer sent before `record` returned finds nothing kept; `fail` makes it raise."""

    def __init__(self) -> None:
        self.calls: list[list[DeliveryReport]] = []
        self.fail: Exception | None = None

    async def record(self, reports: Sequence[DeliveryReport]) -> None:
        await asyncio.sleep(0.01)
        if self.fail is not None:
            raise self.fail
        self.calls.append(list(reports))

    async def match_early(self) -> None:
        return None

    @property
    def reports(self) -> list[DeliveryReport]:
        return [report for call in self.calls for report in call]


class Spy:
    """The real store, with the calls that returned."""

    def __init__(self, store: AsyncDeliveryReports) -> None:
        self.store = store
        self.calls: list[list[DeliveryReport]] = []

    async def record(self, reports: Sequence[DeliveryReport]) -> object:
        outcome = await self.store.record(reports)
        self.calls.append(list(reports))
        return outcome

    async def match_early(self) -> object:
        return await self.store.match_early()


Serve = Callable[..., Served]


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def serve(backend, make_settings, store, monkeypatch) -> Iterator[Serve]:
    """Factory: the service with the receiver configured by `token` and `fields`, on `deliveries`
    (by default the fake store), until the test ends."""
    running: list[Any] = []

    def _serve(
        token: str | None = TOKEN,
        fields: str = "",
        deliveries: Callable[[Any], Any] | None = None,
        **config: Any,
    ) -> Served:
        made = functools.partial(service_app.make_app, deliveries=deliveries or (lambda client: store))
        monkeypatch.setattr(http_served, "make_app", made)
        dlr = DlrConfig(token=token, fields=parse_fields(fields))
        context = serving(backend, make_settings("http://127.0.0.1:9"), ServiceConfig(dlr=dlr, **config))
        running.append(context)
        return context.__enter__()

    yield _serve
    for context in reversed(running):
        context.__exit__(None, None, None)


@pytest.fixture
def served(serve) -> Served:
    return serve()


def get(served: Served, fields: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    return served.call(
        "GET", f"{DLR_PATH}?{urlencode(fields)}", headers=WITH_TOKEN | (headers or {}), key=None
    )


def post(
    served: Served,
    body: Any = None,
    *,
    data: bytes | None = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> Answer:
    path = f"{DLR_PATH}?{urlencode(query)}" if query else DLR_PATH
    sent = WITH_TOKEN | (headers or {})
    return served.call("POST", path, json_body=body, data=data, headers=sent, key=None)


def error_of(answer: Answer) -> dict[str, Any]:
    assert set(answer.body) == {"error"}, answer.body
    return answer.body["error"]


def delivered(message_id: str = MESSAGE_ID, at: float = AT) -> DeliveryReport:
    return DeliveryReport(message_id=message_id, status=DeliveryStatus.DELIVERED, trace="DELIVRD", at=at)


# The shapes a report comes in


def test_a_get_report_in_the_query_is_recorded_before_the_answer(served, store):
    answer = get(served, DELIVERED)

    assert (answer.status, answer.body) == (200, {"received": 1})
    assert store.calls == [[delivered()]]


def test_a_form_post_is_read_with_the_query_under_it(served, store):
    body = urlencode({k: v for k, v in DELIVERED.items() if k != "id"}).encode()

    answer = post(served, data=body, headers=FORM, query={"id": MESSAGE_ID, "status": "Sent"})

    assert (answer.status, answer.body) == (200, {"received": 1})
    assert store.reports == [delivered()]  # the form's status over the query's


def test_a_post_with_the_fields_in_the_query_alone(served, store):
    assert post(served, query=DELIVERED).body == {"received": 1}
    assert store.reports == [delivered()]


def test_a_json_report(served, store):
    answer = post(served, DELIVERED)

    assert (answer.status, answer.body) == (200, {"received": 1})
    assert store.reports == [delivered()]


def test_a_json_list_of_reports_is_recorded_in_one_call(served, store):
    failed = {"id": "abc:2", "status": "Undelivered", "status_trace": "ABSENT-SUB", "timestamp": "1744915000"}

    answer = post(served, [DELIVERED, failed])

    assert (answer.status, answer.body) == (200, {"received": 2})
    absent = DeliveryReport(
        message_id="abc:2", status=DeliveryStatus.UNDELIVERED, trace="ABSENT-SUB", at=1744915000.0
    )
    assert store.calls == [[delivered(), absent]]


def test_an_empty_list_records_nothing(served, store):
    assert post(served, []).body == {"received": 0}
    assert store.calls == []


def test_json_sent_without_a_content_type_is_recognised(served, store):
    answer = post(served, data=json.dumps(DELIVERED).encode())

    assert answer.status == 200
    assert store.reports == [delivered()]


@pytest.mark.parametrize(
    "word, status",
    [("Delivered", DeliveryStatus.DELIVERED), ("DELIVRD", DeliveryStatus.DELIVERED),
     ("UnDelivered", DeliveryStatus.UNDELIVERED), ("EXPIRED", DeliveryStatus.UNDELIVERED),
     ("Failed", DeliveryStatus.FAILED), ("NOT-SENT", DeliveryStatus.FAILED), ("Sent", DeliveryStatus.SENT),
     ("something new", DeliveryStatus.SENT)],
)  # fmt: skip
def test_status_words_map_as_delivery_status_reads_them(served, store, word, status):
    assert post(served, DELIVERED | {"status": word}).status == 200
    assert store.reports[0].status is status


def test_the_trace_falls_back_to_the_description_is_upper_cased_and_cut_to_40(served, store):
    post(served, {"id": "a:1", "status": "Undelivered", "description": "absent-sub"})
    post(served, {"id": "a:2", "status": "Undelivered", "status_trace": "x" * 50})
    post(served, {"id": "a:3", "status": "Delivered"})

    assert [report.trace for report in store.reports] == ["ABSENT-SUB", "X" * 40, ""]


# The field map


def test_the_field_map_renames_the_fields_read(serve, store):
    served = serve(fields="id=msgid, status=stat,status_trace=err,timestamp=done_at")
    fields = {"msgid": MESSAGE_ID, "stat": "Delivered", "err": "DELIVRD", "done_at": "2025-04-17 18:35:20"}

    assert get(served, fields).status == post(served, fields).status == 200
    assert store.reports == [delivered(), delivered()]
    refused = post(served, DELIVERED)  # the default names are not read any more
    assert refused.status == 400 and error_of(refused)["field"] == "msgid"


@pytest.mark.parametrize(
    "text, problem",
    [("id", "not NAME=FIELD"), ("id=", "not NAME=FIELD"), ("ref=x", "not one of"), ("id=a,id=b", "twice"),
     ("id=token", "token")],
)  # fmt: skip
def test_a_bad_field_map_is_refused_in_one_line(text, problem):
    with pytest.raises(SettingsError, match=problem) as refused:
        DlrConfig.from_environ({"CAMPAIGN_DLR_TOKEN": TOKEN, "CAMPAIGN_DLR_FIELDS": text})
    assert "\n" not in str(refused.value) and "CAMPAIGN_DLR_FIELDS" in str(refused.value)


def test_the_environment_turns_the_receiver_on():
    assert DlrConfig.from_environ({}).token is None
    assert DlrConfig.from_environ({"CAMPAIGN_DLR_TOKEN": "  "}).token is None
    config = DlrConfig.from_environ({"CAMPAIGN_DLR_TOKEN": TOKEN, "CAMPAIGN_DLR_FIELDS": "id=msgid"})
    assert config.token == TOKEN and config.fields["id"] == "msgid" and config.fields["status"] == "status"


# The shared secret


def test_the_token_may_come_in_the_query_and_is_not_a_field(served, store):
    answer = served.call("GET", f"{DLR_PATH}?{urlencode(DELIVERED | {'token': TOKEN})}", key=None)

    assert answer.status == 200
    assert store.reports == [delivered()]


@pytest.mark.parametrize(
    "headers, query",
    [({}, {}), ({"X-Dlr-Token": "wrong"}, {}), ({}, {"token": "wrong"}), ({"X-Dlr-Token": ""}, {}),
     ({"X-Dlr-Token": TOKEN[:-1]}, {}), ({"X-Dlr-Token": "wrong"}, {"token": TOKEN}),
     ({"Authorization": f"Bearer {TOKEN}"}, {})],
)  # fmt: skip
def test_without_the_right_token_it_is_401_and_nothing_is_recorded(served, store, headers, query):
    answer = served.call(
        "POST", f"{DLR_PATH}?{urlencode(query)}", json_body=DELIVERED, headers=headers, key=None
    )

    assert answer.status == 401 and error_of(answer)["code"] == "unauthorized"
    assert store.calls == []


def test_an_api_key_is_neither_needed_nor_enough(served, backend, store):
    from redis_model.api_keys import ApiKeyStore

    _, key = ApiKeyStore(backend.client).create("orders")

    assert served.call("POST", DLR_PATH, json_body=DELIVERED, key=key).status == 401
    assert post(served, DELIVERED).status == 200


def test_without_a_token_configured_the_receiver_is_off(serve, store):
    served = serve(token=None)

    for answer in (get(served, DELIVERED), post(served, DELIVERED)):
        assert answer.status == 404
        assert (
            error_of(answer)["code"] == "receiver_off" and "CAMPAIGN_DLR_TOKEN" in error_of(answer)["message"]
        )
    assert store.calls == []


# Refusals: a 400 naming the field, never a 5xx


@pytest.mark.parametrize(
    "body, field",
    [({"status": "Delivered"}, "id"), ({"id": "", "status": "Delivered"}, "id"),
     ({"id": MESSAGE_ID}, "status"), ({"id": MESSAGE_ID, "status": "  "}, "status"),
     ([DELIVERED, {"status": "Sent"}], "[1].id")],
)  # fmt: skip
def test_a_report_without_its_id_or_status_is_400_naming_the_field(served, store, body, field):
    answer = post(served, body)

    assert answer.status == 400
    assert (error_of(answer)["code"], error_of(answer)["field"]) == ("invalid_request", field)
    assert store.calls == []  # a list is refused whole


def test_a_get_without_an_id_is_400(served):
    answer = get(served, {"status": "Delivered"})
    assert answer.status == 400 and error_of(answer)["field"] == "id"


@pytest.mark.parametrize(
    "change, field",
    [({"id": ["x"]}, "id"), ({"id": 1.5}, "id"), ({"id": True}, "id"), ({"status": 2}, "status"),
     ({"status_trace": {"a": 1}}, "status_trace"), ({"timestamp": False}, "timestamp"),
     ({"timestamp": [1]}, "timestamp"), ({"id": "x" * 101}, "id"), ({"id": "a\nb"}, "id")],
)  # fmt: skip
def test_a_field_of_the_wrong_type_is_400_naming_it(served, store, change, field):
    answer = post(served, DELIVERED | change)

    assert answer.status == 400 and error_of(answer)["field"] == field, answer.body
    assert store.calls == []


def test_a_numeric_id_is_read_as_text(served, store):
    assert post(served, DELIVERED | {"id": 12345}).status == 200
    assert store.reports[0].message_id == "12345"


@pytest.mark.parametrize(
    "data, code",
    [(b'{"id": ', "invalid_json"), (b"\xff\xfe", "invalid_json"), (b'"a report"', "invalid_request"),
     (b"[1, 2]", "invalid_request"), (b"[[" * 300_000, "invalid_request"),
     (b'{"id": ' + b"[" * 300_000 + b"}", "invalid_json"),
     (json.dumps([DELIVERED] * 1001).encode(), "invalid_request")],
)  # fmt: skip
def test_a_body_that_is_not_reports_is_400(served, store, data, code):
    answer = post(served, data=data, headers={"Content-Type": "application/json"})

    assert answer.status == 400 and error_of(answer)["code"] == code, answer.body
    assert store.calls == []


def test_a_bad_form_is_400(served):
    answer = post(served, data=b"id=%FF%FE&status=Sent", headers=FORM)
    assert answer.status == 400 and error_of(answer)["code"] == "invalid_request"


def test_a_body_over_the_limit_is_413(serve, store):
    served = serve(max_json_bytes=1024)

    answer = post(served, [DELIVERED] * 20)

    assert answer.status == 413 and error_of(answer)["code"] == "payload_too_large"
    assert store.calls == []


def test_a_body_neither_json_nor_a_form_is_415(served):
    answer = post(served, data=b"<report/>", headers={"Content-Type": "application/xml"})
    assert answer.status == 415 and error_of(answer)["code"] == "unsupported_media_type"


@pytest.mark.parametrize("method", ["PUT", "DELETE", "HEAD"])
def test_other_methods_are_405(served, method):
    assert served.call(method, DLR_PATH, headers=WITH_TOKEN, key=None).status == 405


# Timestamps


@pytest.mark.parametrize(
    "timestamp",
    ["2025-04-17 18:35:20", "2025-04-17T18:35:20", "2025-04-17T18:35:20Z", "2025-04-17T18:35:20+00:00",
     "2025-04-18T00:05:20+05:30", "2025-04-17T13:35:20.000-05:00", str(int(AT)), f"{AT:.3f}", int(AT), AT],
)  # fmt: skip
def test_a_timestamp_of_each_shape_is_read_naive_ones_as_utc(served, store, timestamp):
    assert post(served, DELIVERED | {"timestamp": timestamp}).status == 200
    assert store.reports[0].at == AT


def test_a_timestamp_in_a_query_or_a_form_is_read_too(served, store):
    get(served, DELIVERED | {"timestamp": "2025-04-18T00:05:20+05:30"})
    post(served, data=urlencode(DELIVERED | {"timestamp": str(int(AT))}).encode(), headers=FORM)

    assert [report.at for report in store.reports] == [AT, AT]


@pytest.mark.parametrize("absent", [{}, {"timestamp": ""}, {"timestamp": None}])
def test_without_a_timestamp_the_time_of_receipt_is_taken(served, store, absent):
    report = {k: v for k, v in DELIVERED.items() if k != "timestamp"} | absent
    before = time.time()

    assert post(served, report).status == 200

    assert before <= store.reports[0].at <= time.time()


@pytest.mark.parametrize(
    "timestamp",
    ["17/04/2025 18:35", "yesterday", "1e9", "1999-12-31 23:59:59", "99999999999", 1e300, -5,
     "2025-02-30 10:00:00"],
)  # fmt: skip
def test_a_timestamp_that_is_no_time_is_400(served, store, timestamp):
    answer = post(served, DELIVERED | {"timestamp": timestamp})

    assert answer.status == 400 and error_of(answer)["field"] == "timestamp", answer.body
    assert store.calls == []


# The store


@pytest.mark.parametrize("failure", [redis.ConnectionError("refused"), redis.TimeoutError("timed out")])
def test_a_store_that_fails_answers_503_so_that_the_report_is_sent_again(served, store, failure):
    store.fail = failure

    answer = post(served, DELIVERED)

    assert answer.status == 503 and error_of(answer)["code"] == "unavailable"
    store.fail = None
    assert post(served, DELIVERED).status == 200 and store.reports == [delivered()]


def test_reports_go_through_the_real_store_before_the_answer(serve, backend):
    """On fakeredis and a real Redis: `record` was awaited with the reports, and returned, before the 2xx."""
    spies: list[Spy] = []

    def spied(client: Any) -> Spy:
        spies.append(Spy(AsyncDeliveryReports(client)))
        return spies[-1]

    served = serve(deliveries=spied)
    failed = {"id": "abc:2", "status": "Failed", "status_trace": "NOT-SENT", "timestamp": int(AT)}

    assert post(served, [DELIVERED, failed]).body == {"received": 2}
    assert get(served, DELIVERED).body == {"received": 1}

    [spy] = spies
    not_sent = DeliveryReport(message_id="abc:2", status=DeliveryStatus.FAILED, trace="NOT-SENT", at=AT)
    assert spy.calls == [[delivered(), not_sent], [delivered()]]


def test_no_generated_request_to_the_receiver_gets_a_server_error(served):
    """schemathesis from /openapi.json, the receiver on: valid and invalid reports of each shape."""
    schema = schemathesis.openapi.from_url(f"{served.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().path == DLR_PATH]
    assert len(operations) == 2

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def no_server_error(case) -> None:
            response = case.call(base_url=served.url, headers=WITH_TOKEN)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text)

        no_server_error()


# The simulator's reports


@pytest.fixture
def simulator_reporting() -> Iterator[Callable[..., RunningSimulator]]:
    running: list[RunningSimulator] = []

    def _start(**reports: Any) -> RunningSimulator:
        config = SimulatorConfig(api_key=API_KEY, sid=SID, seed=1, reports=fast(**reports))
        running.append(start_in_thread(config))
        return running[-1]

    yield _start
    for simulator in running:
        simulator.stop()


SHAPES = {
    "post json": ({}, ""),
    "get, the token in the query": ({"method": "GET", "token": None, "query": True}, ""),
    "post form, a template of its own": (
        {"body": "form", "template": {"msgid": "{id}", "stat": "{status}", "err": "{status_trace}",
                                      "done_at": "{timestamp}", "to": "{recipient}"}},
        "id=msgid,status=stat,status_trace=err,timestamp=done_at",
    ),
}  # fmt: skip


@pytest.mark.parametrize("shape", SHAPES)
def test_every_report_the_simulator_saw_acknowledged_reached_the_store(
    serve, store, simulator_reporting, shape
):
    reports, fields = dict(SHAPES[shape][0]), SHAPES[shape][1]
    served = serve(fields=fields)
    url = served.url + DLR_PATH
    if reports.pop("query", False):
        url += "?" + urlencode({"token": TOKEN})
    sim = simulator_reporting(
        url=url, token=reports.pop("token", TOKEN), sent_rate=0.5, duplicate_rate=0.2, seed=5, **reports
    )
    send(sim, 50)

    record = settled(sim)

    acknowledged = [
        DeliveryReport(
            message_id=message["message_id"],
            status=delivery_status(report["status"]),
            trace=report["status_trace"],
            at=float(timegm(time.strptime(report["timestamp"], "%Y-%m-%d %H:%M:%S"))),
        )
        for message in record["messages"]
        for report in message["reports"]
        if report["state"] == "acknowledged"
    ]
    assert record["summary"]["acknowledged"] == len(acknowledged) > 50
    assert record["summary"]["gave_up"] == 0
    assert sorted(store.reports, key=repr) == sorted(acknowledged, key=repr)


def test_a_repeated_field_is_read_from_its_first_occurrence(served, store):
    query = urlencode([("id", MESSAGE_ID), ("id", "other:1"), ("status", "Delivered"), ("status", "Failed")])
    form = b"status=Delivered&status=Failed"

    assert served.call("GET", f"{DLR_PATH}?{query}", headers=WITH_TOKEN, key=None).status == 200
    assert post(served, data=form, headers=FORM, query={"id": MESSAGE_ID}).status == 200

    assert [(r.message_id, r.status) for r in store.reports] == [(MESSAGE_ID, DeliveryStatus.DELIVERED)] * 2
