"""`POST /v1/messages`, `POST /v1/messages/batch`, `GET /v1/messages/{id}`: single messages, each
queued on its lane with one XADD (three commands with an Idempotency-Key), the requests of a loop turn
and a batch in one round trip."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
from aiohttp import web

from campaign.service.auth import api_key_of
from campaign.service.bodies import (
    BatchItem,
    BatchMessage,
    BatchRequest,
    BatchResult,
    MessageRequest,
    Receipt,
    read_json,
)
from campaign.service.context import service_of
from campaign.service.errors import ApiError, ErrorDetail, invalid, json_response, refused
from producer.messages import MessageToQueue, prepare_message, receipt
from redis_model.message_intake import BatchEntry, Once, QueuedOnce
from schemas.errors import IdempotencyConflict, InputError, SpecError
from schemas.settings import Settings

IDEMPOTENCY_HEADER = "Idempotency-Key"
ITEM_IDEMPOTENCY_FIELD = "idempotency_key"  # a batch item's own key
_message = msgspec.json.Decoder(MessageRequest)
_batch = msgspec.json.Decoder(BatchRequest)
_batch_item = msgspec.json.Decoder(BatchMessage)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", post_message)
    app.router.add_post("/v1/messages/batch", post_batch)
    app.router.add_get("/v1/messages/{id}", get_message)


async def post_message(request: web.Request) -> web.Response:
    service, key = service_of(request), api_key_of(request)
    asked = await read_json(request, _message, service.config.max_json_bytes)
    fields = msgspec.structs.asdict(asked) | {"idempotency_key": request.headers.get(IDEMPOTENCY_HEADER)}
    message, lane, idempotency = _prepared(service.settings, fields, IDEMPOTENCY_HEADER)
    service.limiter.take(key, 1)
    if idempotency is None:
        return json_response(Receipt(id=await service.intake.queue(message, lane)), status=202)
    held = await service.intake.queue_once(
        message, lane, key.id, idempotency.key_digest, idempotency.request_digest
    )
    try:
        answer = Receipt(id=receipt(idempotency, held).id)
    except IdempotencyConflict as e:
        raise ApiError(409, "idempotency_conflict", str(e), field=IDEMPOTENCY_HEADER) from e
    return json_response(answer, status=202)


async def post_batch(request: web.Request) -> web.Response:
    """Each item queued or refused on its own (`results`, in order); the queued ones, those with an
    `idempotency_key` among them, in one round trip."""
    service, key = service_of(request), api_key_of(request)
    if IDEMPOTENCY_HEADER in request.headers:
        raise ApiError(
            400, "invalid_request", f"a batch takes no {IDEMPOTENCY_HEADER} header: give each message that "
            f'needs one its own, as "{ITEM_IDEMPOTENCY_FIELD}" in the item', field=IDEMPOTENCY_HEADER,
        )  # fmt: skip
    batch = await read_json(request, _batch, service.config.max_json_bytes)
    results: list[BatchItem | None] = [None] * len(batch.messages)
    ready = _checked(service.settings, batch.messages, results)
    if ready:
        service.limiter.take(key, len(ready))
        outcomes = await service.intake.queue_batch([_entry(queued) for _, queued in ready], key.id)
        for (index, queued), outcome in zip(ready, outcomes, strict=True):
            results[index] = _result(index, queued, outcome)
    done = [item for item in results if item is not None]
    refused_items = sum(item.error is not None for item in done)
    answer = BatchResult(queued=len(done) - refused_items, refused=refused_items, results=done)
    return json_response(answer, status=202)


async def get_message(request: web.Request) -> web.Response:
    try:
        state = await service_of(request).campaigns.message(request.match_info["id"])
    except InputError as e:
        raise refused(e) from e
    return json_response(state)


def _checked(
    settings: Settings, raws: Sequence[msgspec.Raw], results: list[BatchItem | None]
) -> list[tuple[int, MessageToQueue]]:
    """The batch's items that pass the checks, with their index; the refusal of each other in `results`."""
    ready = []
    for index, raw in enumerate(raws):
        try:
            fields = msgspec.structs.asdict(_batch_item.decode(raw))
            ready.append((index, _prepared(settings, fields, ITEM_IDEMPOTENCY_FIELD)))
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            results[index] = BatchItem(index=index, error=invalid(e, f"messages[{index}]").detail())
        except ApiError as e:
            e.field = f"messages[{index}].{e.field}" if e.field else f"messages[{index}]"
            results[index] = BatchItem(index=index, error=e.detail())
    return ready


def _entry(queued: MessageToQueue) -> BatchEntry:
    once = queued.idempotency
    return queued.message, queued.lane, None if once is None else Once(once.key_digest, once.request_digest)


def _result(index: int, queued: MessageToQueue, outcome: str | QueuedOnce) -> BatchItem:
    """An item's result: its id; or, with an idempotency key, the first id its key queued, or a
    conflict when that was another message (a key used by an earlier item of the batch included)."""
    if isinstance(outcome, str):
        return BatchItem(index=index, id=outcome, status="queued")
    assert queued.idempotency is not None  # an item with a key has a QueuedOnce
    try:
        answer = receipt(queued.idempotency, outcome)
    except IdempotencyConflict as e:
        field = f"messages[{index}].{ITEM_IDEMPOTENCY_FIELD}"
        return BatchItem(
            index=index, error=ErrorDetail(code="idempotency_conflict", message=str(e), field=field)
        )
    return BatchItem(index=index, id=answer.id, status="queued", replayed=outcome.replayed)


def _prepared(settings: Settings, fields: dict[str, Any], key_field: str) -> MessageToQueue:
    """The message checked as `Campaigns.send_message` checks it; a refusal as a 400 naming its field
    (`key_field` for the idempotency key)."""
    try:
        return prepare_message(settings, **fields)
    except SpecError as e:
        if str(e).startswith("idempotency key"):
            raise ApiError(400, "invalid_request", str(e), field=key_field) from e
        raise refused(e, MessageRequest.__struct_fields__) from e
