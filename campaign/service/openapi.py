"""`GET /openapi.json`: the API described in OpenAPI 3.1, its schemas generated from the msgspec Structs
the handlers decode and encode."""

from __future__ import annotations

import functools
from typing import Any

import msgspec

from campaign.service.bodies import (
    BatchRequestSchema,
    BatchResult,
    CampaignList,
    Health,
    MessageRequest,
    Receipt,
    Steered,
)
from campaign.service.campaigns import MAX_LIST, CampaignQuery
from campaign.service.dlr import MAX_REPORTS, Received
from campaign.service.dlr_config import DEFAULT_FIELDS, DLR_PATH, TOKEN_HEADER, TOKEN_QUERY
from campaign.service.errors import ErrorBody
from campaign.service.messages import IDEMPOTENCY_HEADER
from campaign.service.upload import SUFFIXES
from producer.control import CampaignStatus
from producer.publish import CampaignCounts, PublishResult
from schemas.message import MessageState

_REF = "#/components/schemas/{name}"
_TYPES = (
    MessageRequest, BatchRequestSchema, Receipt, MessageState, BatchResult, CampaignList,
    CampaignStatus, PublishResult, CampaignCounts, Steered, Health, ErrorBody, CampaignQuery, Received,
)  # fmt: skip
_ERRORS = {
    400: "refused: bad JSON, an unknown field, a wrong type or value (`field` names it)",
    401: "no API key, or one that is not known",
    404: "no such message or campaign",
    409: "the Idempotency-Key was used for another message, or the campaign's state forbids the move",
    413: "the body is over the service's limit",
    415: "the body's content type is not one this operation reads",
    429: "the API key's rate is spent: retry after `Retry-After` seconds",
    503: "Redis cannot be reached",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _json(name: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(name)}}}


def _json_body(name: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(name)}}}


def _answers(ok: int, name: str, description: str, *errors: int) -> dict[str, Any]:
    answers = {str(ok): _json(name, description)}
    for status in (400, 401, *errors, 503):
        answers[str(status)] = _json("ErrorBody", _ERRORS[status])
    return answers


def _path_id(what: str) -> dict[str, Any]:
    return {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": what}


def _campaign_query(components: dict[str, Any]) -> list[dict[str, Any]]:
    """`POST /v1/campaigns`' query parameters: `CampaignQuery`'s fields (required ones only when the body
    is the file alone: a multipart body carries them in its `spec` part instead)."""
    query = components["CampaignQuery"]
    return [
        {"name": name, "in": "query", "required": False, "schema": schema,
         **({"description": "required, unless sent in a multipart body's `spec`"}
            if name in query.get("required", ()) else {})}
        for name, schema in query["properties"].items()
    ]  # fmt: skip


def _message_paths() -> dict[str, Any]:
    idempotency = {
        "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
        "description": "the same key and body within 24 hours: the first answer again, nothing sent",
    }  # fmt: skip
    return {
        "/v1/messages": {"post": {
            "summary": "queue one message", "parameters": [idempotency],
            "requestBody": _json_body("MessageRequest"),
            "responses": _answers(202, "Receipt", "queued", 409, 413, 415, 429),
        }},
        "/v1/messages/batch": {"post": {
            "summary": "queue up to 1000 messages, each refused or queued on its own",
            "description": "An item's `idempotency_key` works as the Idempotency-Key of POST /v1/messages "
            "(the same keys, per API key): the same key and message again answer the first id with "
            "`replayed`, queueing nothing; another message is that item's `idempotency_conflict`. The "
            f"batch itself takes no {IDEMPOTENCY_HEADER} header (400).",
            "requestBody": _json_body("BatchRequest"),
            "responses": _answers(202, "BatchResult", "a result per item, in order", 413, 415, 429),
        }},
        "/v1/messages/{id}": {"get": {
            "summary": "where a message stands", "parameters": [_path_id("the id POST answered")],
            "responses": _answers(200, "MessageState", "its status", 404),
        }},
    }  # fmt: skip


def _campaign_paths(query: list[dict[str, Any]]) -> dict[str, Any]:
    recipients = {"schema": {"type": "string"}}
    limit = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIST}}
    paths: dict[str, Any] = {
        "/v1/campaigns": {
            "post": {
                "summary": "publish the recipients file in the body (CSV or JSON lines), the options in the "
                "query; or both as the parts of a multipart/form-data body", "parameters": query,
                "requestBody": {"required": True, "content": dict.fromkeys(SUFFIXES, recipients) | {
                    "multipart/form-data": {
                        "schema": {"type": "object", "required": ["spec", "recipients"], "properties": {
                            "spec": _ref("CampaignQuery"),
                            "recipients": {"type": "string", "format": "binary"},
                        }},
                        "encoding": {"spec": {"contentType": "application/json"},
                                     "recipients": {"contentType": ", ".join(SUFFIXES)}},
                    },
                }},
                "responses": _answers(201, "PublishResult", "published", 413, 415)
                | {"200": _json("CampaignCounts", "counted, nothing published (dry_run): no campaign_id")},
            },
            "get": {
                "summary": "the newest campaigns, newest first", "parameters": [limit],
                "responses": _answers(200, "CampaignList", "their status"),
            },
        },
        "/v1/campaigns/{id}": {"get": {
            "summary": "a campaign's status", "parameters": [_path_id("the campaign's id")],
            "responses": _answers(200, "CampaignStatus", "what `campaign status --json` prints", 404),
        }},
    }  # fmt: skip
    for action in ("pause", "resume", "cancel"):
        paths[f"/v1/campaigns/{{id}}/{action}"] = {"post": {
            "summary": f"{action} a campaign", "parameters": [_path_id("the campaign's id")],
            "responses": _answers(200, "Steered", "its state now", 404, 409),
        }}  # fmt: skip
    return paths


def _dlr_paths() -> dict[str, Any]:
    """The delivery-report receiver: Kaleyra's callback profile, with the shared secret, not an API key."""
    value = {"type": ["string", "number", "null"]}
    described = {
        "id": "Kaleyra's message id (`<request id>:<position>`), at most 100 characters",
        "status": "Sent, Delivered, Undelivered, Failed, or an SMPP word (DELIVRD, UNDELIV, EXPIRED, ...)",
        "status_trace": "the finer reason (ABSENT-SUB, OPT-OUT, ...); at most 40 characters are kept",
        "description": "read for the trace when status_trace is absent or empty",
        "timestamp": "`2025-04-17 18:35:20` (UTC), ISO 8601 (an offset, else UTC) or Unix seconds; "
        "absent: the time of receipt",
    }
    report = {
        "type": "object", "required": ["id", "status"],
        "properties": {name: value | {"description": text} for name, text in described.items()},
        "description": "the default field names; CAMPAIGN_DLR_FIELDS renames them (docs/http-api.md)",
    }  # fmt: skip
    form = {"type": "object", "properties": {name: {"type": "string"} for name in DEFAULT_FIELDS}}
    query = [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
        for name, text in described.items()
    ]
    errors = {
        "400": _json("ErrorBody", "a report without its id or status, a field of the wrong type, bad JSON"),
        "401": _json("ErrorBody", f"no {TOKEN_HEADER} header (or `{TOKEN_QUERY}` query), or a wrong one"),
        "404": _json("ErrorBody", "the receiver is off: CAMPAIGN_DLR_TOKEN is not set"),
        "413": _json("ErrorBody", _ERRORS[413]),
        "415": _json("ErrorBody", "a body neither JSON nor a form"),
        "503": _json("ErrorBody", "the reports could not be stored: send them again"),
    }
    security: list[dict[str, list[str]]] = [{"dlrToken": []}, {"dlrTokenQuery": []}]
    ok = {"200": _json("Received", "the store has taken every report")}
    return {DLR_PATH: {
        "get": {
            "summary": "a delivery report, its fields in the query", "security": security,
            "parameters": query, "responses": ok | errors,
        },
        "post": {
            "summary": "delivery reports: a JSON report or a list of them, a form, or the query",
            "security": security,
            "requestBody": {"required": False, "content": {
                "application/json": {"schema": {"oneOf": [
                    report, {"type": "array", "items": report, "maxItems": MAX_REPORTS},
                ]}},
                "application/x-www-form-urlencoded": {"schema": form},
            }},
            "responses": ok | errors,
        },
    }}  # fmt: skip


def _health_paths() -> dict[str, Any]:
    def probe(summary: str) -> dict[str, Any]:
        return {"get": {"summary": summary, "security": [], "responses": {
            "200": _json("Health", "yes"), "503": _json("ErrorBody", "no"),
        }}}  # fmt: skip

    return {
        "/healthz": probe("the process is up"),
        "/readyz": probe("Redis answers and the scripts are loaded"),
        "/metrics": {"get": {"summary": "Prometheus metrics of all the service's processes",
                             "security": [], "responses": {"200": {
                                 "description": "Prometheus text format 0.0.4",
                                 "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {"summary": "this document", "security": [],
                                  "responses": {"200": {"description": "OpenAPI 3.1"}}}},
    }  # fmt: skip


@functools.cache
def document() -> bytes:
    """The OpenAPI document, encoded once."""
    _, components = msgspec.json.schema_components(_TYPES, ref_template=_REF)
    query = _campaign_query(components)
    return msgspec.json.encode({
        "openapi": "3.1.0",
        "info": {"title": "campaign serve", "version": "1", "description": "Kaleyra SMS: single messages, "
                 "campaigns and delivery reports (docs/http-api.md)"},
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "dlrToken": {"type": "apiKey", "in": "header", "name": TOKEN_HEADER},
                "dlrTokenQuery": {"type": "apiKey", "in": "query", "name": TOKEN_QUERY},
            },
        },
        "security": [{"bearer": []}],
        "paths": _message_paths() | _campaign_paths(query) | _dlr_paths() | _health_paths(),
    })  # fmt: skip
