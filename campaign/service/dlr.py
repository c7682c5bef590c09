"""`/v1/dlr/kaleyra`: the delivery-report receiver. Kaleyra's callback profile (or the simulator) sends a
report by GET (query) or POST (query, form, or JSON: a report or a list of them) with the shared secret;
each is read through the field map into a `DeliveryReport` and handed to the store, and the answer is
2xx only once the store has it (else Kaleyra sends it again)."""

from __future__ import annotations

import asyncio
import hmac
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl

import msgspec
import redis
import structlog
from aiohttp import web

from campaign.service.bodies import decode_json, read_body
from campaign.service.context import Service, service_of
from campaign.service.dlr_config import DLR_PATH, TOKEN_HEADER, TOKEN_QUERY, DlrConfig
from campaign.service.errors import ApiError, json_response
from campaign.service.metrics import count_reports
from schemas.delivery import DeliveryReport, delivery_status

MAX_REPORTS = 1000  # in one JSON list
MAX_ID_CHARS = 100
MAX_TRACE_CHARS = 40
# Timestamps before 2000 or from 2100 on are no report's: a template's mistake, refused.
EARLIEST, LATEST = 946_684_800.0, 4_102_444_800.0
_UNIX = re.compile(r"\d{1,12}(\.\d*)?")
_JSON_TYPES = ("application/json", "text/json")
_FORM_TYPE = "application/x-www-form-urlencoded"
_SNIFFED_TYPES = ("application/octet-stream", "text/plain")  # what aiohttp says of a body sent untyped
_reports = msgspec.json.Decoder(
    dict[str, msgspec.Raw] | Annotated[list[dict[str, msgspec.Raw]], msgspec.Meta(max_length=MAX_REPORTS)]
)
_value = msgspec.json.Decoder(str | int | float | None)


class Received(msgspec.Struct, frozen=True, kw_only=True):
    """What the receiver answers once the store holds the reports."""

    received: int


def add_routes(app: web.Application) -> None:
    app.router.add_get(DLR_PATH, receive, allow_head=False)
    app.router.add_post(DLR_PATH, receive)


async def receive(request: web.Request) -> web.Response:
    service = service_of(request)
    config = service.config.dlr
    if config.token is None:
        raise ApiError(
            404, "receiver_off", "the delivery-report receiver is off: set CAMPAIGN_DLR_TOKEN to turn it on"
        )
    _check_token(request, config.token)
    received_at = time.time()
    sources = await _sources(request, service.config.max_json_bytes)
    reports = [
        report_of(fields, config, received_at, where=f"[{index}]." if listed else "")
        for index, (fields, listed) in enumerate(sources)
    ]
    if reports:
        try:
            count_reports(await service.deliveries.record(reports))
        except redis.RedisError as e:
            # A logger of the configuration in force (rare: no need for a cached one).
            structlog.get_logger("campaign.service").warning(
                "dlr.store_unavailable", reports=len(reports), error=str(e)
            )
            raise ApiError(503, "unavailable", "the reports could not be stored; send them again") from e
    return json_response(Received(received=len(reports)))


def _check_token(request: web.Request, token: str) -> None:
    """401 unless the header (else the query parameter) holds the token; compared in constant time."""
    given = request.headers.get(TOKEN_HEADER)
    if given is None:
        given = request.query.get(TOKEN_QUERY)
    if given is None:
        told = f"send the shared secret (CAMPAIGN_DLR_TOKEN) as header {TOKEN_HEADER} or query {TOKEN_QUERY}"
        raise ApiError(401, "unauthorized", told)
    if not hmac.compare_digest(_bytes(given), _bytes(token)):
        raise ApiError(401, "unauthorized", "the delivery-report token is not the one configured")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


async def _sources(request: web.Request, limit: int) -> list[tuple[Mapping[str, Any], bool]]:
    """Each report's fields, and whether it came in a JSON list: a JSON body's objects, else a form's
    fields over the query's, else the query's."""
    query: dict[str, str] = {}
    for name, value in request.query.items():
        if name != TOKEN_QUERY:
            query.setdefault(name, value)  # the first of a repeated parameter, as `request.query.get`
    data = await read_body(request, limit) if request.method == "POST" and request.body_exists else b""
    if not data.strip():
        return [(query, False)]
    kind = request.content_type
    if kind in _SNIFFED_TYPES:
        kind = _JSON_TYPES[0] if data.lstrip()[:1] in (b"{", b"[") else _FORM_TYPE
    if kind in _JSON_TYPES or kind.endswith("+json"):
        found = decode_json(_reports, data)
        return [(found, False)] if isinstance(found, dict) else [(fields, True) for fields in found]
    if kind == _FORM_TYPE:
        return [(query | _form(data), False)]
    told = f"send the report as JSON, a form ({_FORM_TYPE}) or the query, not {request.content_type}"
    raise ApiError(415, "unsupported_media_type", told)


def _form(data: bytes | bytearray) -> dict[str, str]:
    try:
        pairs = parse_qsl(bytes(data).decode(), keep_blank_values=True, errors="strict", max_num_fields=100)
    except (UnicodeDecodeError, ValueError) as e:
        raise ApiError(400, "invalid_request", f"the form cannot be read: {e}") from e
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)  # the first of a repeated field, as in the query
    return fields


def report_of(
    fields: Mapping[str, Any], config: DlrConfig, received_at: float, where: str = ""
) -> DeliveryReport:
    """One report read through the field map; a 400 naming the field (`where` before it) it cannot use."""
    names = config.fields
    read = _Reader(fields, where)
    message_id = read.text(names["id"], required=True, numbers=True)
    if len(message_id) > MAX_ID_CHARS or not message_id.isprintable():
        raise read.refusal(
            names["id"], f"is not a Kaleyra message id ({MAX_ID_CHARS} printable characters at most)"
        )
    status = read.text(names["status"], required=True)
    trace = read.text(names["status_trace"]) or read.text(names["description"])
    timestamp = read.value(names["timestamp"])
    at = received_at if timestamp in (None, "") else read.time(names["timestamp"], timestamp)
    return DeliveryReport(
        message_id=message_id,
        status=delivery_status(status),
        trace=trace.upper()[:MAX_TRACE_CHARS],
        at=at,
    )


class _Reader:
    """A report's fields, from a query or form (strings) or a JSON object (raw values, decoded when read)."""

    def __init__(self, fields: Mapping[str, Any], where: str) -> None:
        self.fields, self.where = fields, where

    def refusal(self, name: str, problem: str) -> ApiError:
        return ApiError(400, "invalid_request", f"{self.where}{name} {problem}", field=f"{self.where}{name}")

    def value(self, name: str) -> str | int | float | None:
        found = self.fields.get(name)
        if isinstance(found, msgspec.Raw):
            try:
                return _value.decode(found)
            except (msgspec.ValidationError, RecursionError) as e:
                raise self.refusal(name, "must be a string or a number") from e
        return found

    def text(self, name: str, *, required: bool = False, numbers: bool = False) -> str:
        found = self.value(name)
        if isinstance(found, int) and numbers:
            found = str(found)
        if found is not None and not isinstance(found, str):
            raise self.refusal(name, f"must be a string, not {found!r}")
        text = (found or "").strip()
        if required and not text:
            raise self.refusal(name, "is missing: a report needs it")
        return text

    def time(self, name: str, value: str | int | float) -> float:
        """Unix seconds from `2025-04-17 18:35:20` (UTC), ISO 8601 (an offset, else UTC) or Unix seconds."""
        try:
            if isinstance(value, str) and not _UNIX.fullmatch(value.strip()):
                moment = datetime.fromisoformat(value.strip())
                at = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
            else:
                at = float(value)
        except (ValueError, OverflowError) as e:
            raise self.refusal(name, self._time_help(value)) from e
        if not EARLIEST <= at < LATEST:
            raise self.refusal(name, self._time_help(value))
        return at

    @staticmethod
    def _time_help(value: object) -> str:
        return (
            f"{value!r} is not a time from 2000 to 2099: send 2025-04-17 18:35:20 (UTC), ISO 8601 or "
            "Unix seconds"
        )


# How often a receiving process looks for reports that came before their request was settled.
MATCH_EARLY_EVERY_S = 1.0


async def match_early_reports(service: Service) -> None:
    """Until cancelled: record the early reports of requests settled since (every process of the
    service does it; each request's are taken by one)."""
    while True:
        await asyncio.sleep(MATCH_EARLY_EVERY_S)
        try:
            await service.deliveries.match_early()
        except redis.RedisError as e:
            structlog.get_logger("campaign.service").warning("dlr.match_failed", reason=f"Redis: {e}")
        except Exception:  # a stored record it cannot read: the pass goes on next time, not never
            structlog.get_logger("campaign.service").exception("dlr.match_failed")
