"""`POST /v1/messages`, `POST /v1/messages/batch`, `GET /v1/messages/{id}`: single messages, each
queued on its lane in one Redis command (three with an Idempotency-Key), a batch in one round trip."""

from __future__ import annotations

import msgspec
from aiohttp import web

from campaign.service.auth import api_key_of
from campaign.service.bodies import BatchItem, BatchRequest, BatchResult, MessageRequest, Receipt, read_json
from campaign.service.context import service_of
from campaign.service.errors import ApiError, invalid, json_response, refused
from producer.messages import MessageToQueue, prepare_message, receipt
from schemas.errors import IdempotencyConflict, InputError, SpecError
from schemas.settings import Settings

IDEMPOTENCY_HEADER = "Idempotency-Key"
_message = msgspec.json.Decoder(MessageRequest)
_batch = msgspec.json.Decoder(BatchRequest)


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/messages", post_message)
    app.router.add_post("/v1/messages/batch", post_batch)
    app.router.add_get("/v1/messages/{id}", get_message)


async def post_message(request: web.Request) -> web.Response:
    service, key = service_of(request), api_key_of(request)
    asked = await read_json(request, _message, service.config.max_json_bytes)
    message, lane, idempotency = _prepared(service.settings, asked, request.headers.get(IDEMPOTENCY_HEADER))
    service.limiter.take(key, 1)
    if idempotency is None:
        return json_response(Receipt(id=await service.coalesced.queue(message, lane)), status=202)
    held = await service.intake.queue_once(
        message, lane, key.id, idempotency.key_digest, idempotency.request_digest
    )
    try:
        answer = Receipt(id=receipt(idempotency, held).id)
    except IdempotencyConflict as e:
        raise ApiError(409, "idempotency_conflict", str(e), field=IDEMPOTENCY_HEADER) from e
    return json_response(answer, status=202)


async def post_batch(request: web.Request) -> web.Response:
    """Each item queued or refused on its own (`results`, in order); the queued ones in one round trip."""
    service, key = service_of(request), api_key_of(request)
    if IDEMPOTENCY_HEADER in request.headers:
        raise ApiError(
            400, "invalid_request", "a batch takes no Idempotency-Key: send each message that needs one "
            "to POST /v1/messages", field=IDEMPOTENCY_HEADER,
        )  # fmt: skip
    batch = await read_json(request, _batch, service.config.max_json_bytes)
    results: list[BatchItem | None] = []
    ready: list[tuple[int, MessageToQueue]] = []
    for index, raw in enumerate(batch.messages):
        try:
            ready.append((index, _prepared(service.settings, _message.decode(raw), None)))
            results.append(None)
        except (msgspec.ValidationError, msgspec.DecodeError) as e:
            results.append(BatchItem(index=index, error=invalid(e, f"messages[{index}]").detail()))
        except ApiError as e:
            e.field = f"messages[{index}].{e.field}" if e.field else f"messages[{index}]"
            results.append(BatchItem(index=index, error=e.detail()))
    if ready:
        service.limiter.take(key, len(ready))
        ids = await service.intake.queue_many([(queued.message, queued.lane) for _, queued in ready])
        for (index, _), message_id in zip(ready, ids, strict=True):
            results[index] = BatchItem(index=index, id=message_id, status="queued")
    done = [item for item in results if item is not None]
    answer = BatchResult(queued=len(ready), refused=len(done) - len(ready), results=done)
    return json_response(answer, status=202)


async def get_message(request: web.Request) -> web.Response:
    try:
        state = await service_of(request).campaigns.message(request.match_info["id"])
    except InputError as e:
        raise refused(e) from e
    return json_response(state)


def _prepared(settings: Settings, asked: MessageRequest, idempotency_key: str | None) -> MessageToQueue:
    """The message checked as `Campaigns.send_message` checks it; a refusal as a 400 naming its field."""
    try:
        return prepare_message(settings, idempotency_key=idempotency_key, **msgspec.structs.asdict(asked))
    except SpecError as e:
        if str(e).startswith("idempotency key"):
            raise ApiError(400, "invalid_request", str(e), field=IDEMPOTENCY_HEADER) from e
        raise refused(e, MessageRequest.__struct_fields__) from e
