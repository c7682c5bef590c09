"""The shapes of the API's JSON (msgspec Structs: decoded fast, refused exactly) and the reading of a
JSON body within its size limit."""

from __future__ import annotations

from typing import Annotated, TypeVar

import msgspec
from aiohttp import web

from campaign.service.errors import ApiError, ErrorDetail, invalid
from producer.control import CampaignStatus
from producer.messages import MAX_IDEMPOTENCY_KEY_CHARS
from schemas.message import MessageStatus

MAX_BATCH = 1000
T = TypeVar("T")

Text = Annotated[str, msgspec.Meta(max_length=4000)]
Short = Annotated[str, msgspec.Meta(max_length=255)]
IdempotencyKey = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        description="printable; as the Idempotency-Key of POST /v1/messages (per API key, 24 hours): the "
        "same key and message again answer the first id, `replayed`; another message is refused",
    ),
]


class MessageRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/messages`: one message, checked as `Campaigns.send_message` checks it."""

    to: Annotated[str, msgspec.Meta(max_length=64, description="E.164, or national with `prefix`")]
    body: Annotated[Text, msgspec.Meta(description="sent as written: `{name}` is text")]
    sender: Annotated[Short, msgspec.Meta(description="an approved sender ID")]
    type: Annotated[Short, msgspec.Meta(description="MKT, TXN, OTP, DEFAULT or TXND")]
    prefix: Short | None = None
    unicode: Annotated[Short, msgspec.Meta(description="auto, 0 or 1")] | None = None
    template_id: Short | None = None
    entity_id: Short | None = None
    callback_profile_id: Short | None = None
    reference: Annotated[Short, msgspec.Meta(description="yours, returned with its state")] | None = None
    callback_url: (
        Annotated[str, msgspec.Meta(max_length=2000, description="where its end and its delivery are POSTed")]
        | None
    ) = None


class BatchMessage(MessageRequest, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An item of `POST /v1/messages/batch`: a message, and its own idempotency key if it needs one."""

    idempotency_key: IdempotencyKey | None = None


class BatchRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`POST /v1/messages/batch`: each item is checked (and refused) on its own."""

    messages: Annotated[list[msgspec.Raw], msgspec.Meta(min_length=1, max_length=MAX_BATCH)]


class Receipt(msgspec.Struct, frozen=True, kw_only=True):
    """What `POST /v1/messages` answers: `MessageReceipt` with its status always shown."""

    id: str
    status: MessageStatus = MessageStatus.QUEUED


class BatchItem(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One item's result: its receipt's `id` and `status` (`replayed` when its idempotency key queued it
    before), or the `error` that refused it alone (`idempotency_conflict`: its key queued another message)."""

    index: int
    id: str | None = None
    status: str | None = None
    replayed: Annotated[
        bool, msgspec.Meta(description="its key queued it before: the first id, nothing more queued")
    ] = False
    error: ErrorDetail | None = None


class BatchResult(msgspec.Struct, frozen=True, kw_only=True):
    """`queued`: the items answered with an id (replayed ones too); `refused`: those with an error."""

    queued: int
    refused: int
    results: list[BatchItem]


class CampaignList(msgspec.Struct, frozen=True, kw_only=True):
    campaigns: list[CampaignStatus]


class Steered(msgspec.Struct, frozen=True, kw_only=True):
    """What pause, resume and cancel answer: the campaign's state after the move."""

    campaign_id: str
    state: str


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str


# The schema of the batch's items is `BatchMessage`: `list[msgspec.Raw]` is decoded an item at a time.
BatchRequestSchema = msgspec.defstruct(
    "BatchRequest",
    [("messages", Annotated[list[BatchMessage], msgspec.Meta(min_length=1, max_length=MAX_BATCH)])],
    kw_only=True,
    forbid_unknown_fields=True,
)


async def read_json(request: web.Request, decoder: msgspec.json.Decoder[T], limit: int) -> T:
    """The body decoded by `decoder`; 415 for another content type, 413 past `limit` bytes (told by
    its Content-Length, or found while reading), 400 naming the field for anything msgspec refuses
    (and for JSON nested too deep)."""
    if request.content_type not in ("application/json", "application/octet-stream") and request.body_exists:
        raise ApiError(415, "unsupported_media_type", f"send application/json, not {request.content_type}")
    return decode_json(decoder, await read_body(request, limit))


def decode_json(decoder: msgspec.json.Decoder[T], data: bytes | bytearray) -> T:
    """`data` decoded by `decoder`; 400 naming the field for anything msgspec refuses."""
    try:
        return decoder.decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError) as e:
        raise invalid(e) from e
    except RecursionError as e:  # msgspec's answer to arrays nested a million deep, even where skipped
        raise ApiError(400, "invalid_json", "the body's JSON is nested too deep") from e


async def read_body(request: web.Request, limit: int) -> bytearray:
    """The body's bytes; 413 past `limit` (told by its Content-Length, or found while reading)."""
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the body is over {limit} bytes")
    data = bytearray()
    while chunk := await request.content.readany():
        data += chunk
        if len(data) > limit:
            raise ApiError(413, "payload_too_large", f"the body is over {limit} bytes")
    return data
