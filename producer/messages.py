"""One single message, checked as a campaign's options and numbers are, and the digests that make its
sending idempotent."""

from __future__ import annotations

import functools
import hashlib
import time
from typing import NamedTuple

import msgspec

from producer.numbers import InvalidNumber, NumberNormaliser
from producer.spec import (
    check_body,
    check_dlt_id,
    check_dlt_required,
    check_identifier,
    check_prefix,
    check_sender,
    check_type,
    check_unicode,
)
from redis_model import keys
from redis_model.keys import Lane
from redis_model.message_intake import QueuedOnce
from schemas.callback import check_callback_url
from schemas.errors import IdempotencyConflict, SpecError, UnknownMessageError
from schemas.message import MessageReceipt, MessageState, SingleMessage
from schemas.settings import Settings

MAX_REFERENCE_CHARS = 64
MAX_IDEMPOTENCY_KEY_CHARS = 255
PYTHON_API_SCOPE = ""  # the idempotency keys' scope of the Python API (the HTTP service's: an API key)
# Digests are of this encoding, not of the stored record's, so that a change of how messages are
# stored does not turn a retry in flight into a conflict.
_canonical = msgspec.msgpack.Encoder(order="deterministic")


class Idempotency(NamedTuple):
    """An idempotency key, its digest (all that is stored of it) and the digest of the request."""

    key: str
    key_digest: str
    request_digest: str


class MessageToQueue(NamedTuple):
    """A checked message, its lane and, when it came with an idempotency key, its `Idempotency`."""

    message: SingleMessage
    lane: Lane
    idempotency: Idempotency | None


def prepare_message(
    settings: Settings,
    *,
    to: str,
    body: str,
    sender: str,
    type: str,
    reference: str | None = None,
    idempotency_key: str | None = None,
    prefix: str | None = None,
    unicode: str | None = None,
    template_id: str | None = None,
    entity_id: str | None = None,
    callback_profile_id: str | None = None,
    callback_url: str | None = None,
) -> MessageToQueue:
    """The message as queued, `to` in E.164 and every option checked as `campaign send` checks it
    (`SpecError` naming the value refused), with its lane and, for an idempotency key, its digests.
    The body is final: a `{field}` in it is sent as written."""
    template_id, entity_id = check_dlt_id("template-id", template_id), check_dlt_id("entity-id", entity_id)
    check_dlt_required(settings, template_id, entity_id)
    message = SingleMessage(
        to=_recipient(to, check_prefix(prefix or settings.default_prefix)),
        body=check_body(body),
        sender=check_sender(sender),
        type=check_type(type),
        unicode=check_unicode(unicode, body),
        template_id=template_id,
        entity_id=entity_id,
        callback_profile_id=check_identifier("callback-profile-id", callback_profile_id),
        reference=_reference(reference),
        queued_at=time.time(),
        callback_url=check_callback_url(callback_url),
    )
    lane = keys.lane_of(message.type)
    if idempotency_key is None:
        return MessageToQueue(message, lane, None)
    once = Idempotency(idempotency_key, key_digest(idempotency_key), request_digest(message))
    return MessageToQueue(message, lane, once)


def key_digest(idempotency_key: str) -> str:
    """The SHA-256 (hex) of an idempotency key, which is all that is stored of it."""
    if not (0 < len(idempotency_key) <= MAX_IDEMPOTENCY_KEY_CHARS and idempotency_key.isprintable()):
        raise SpecError(
            f"idempotency key {idempotency_key[:80]!r} must be 1-{MAX_IDEMPOTENCY_KEY_CHARS} printable "
            "characters"
        )
    return hashlib.sha256(idempotency_key.encode()).hexdigest()


def request_digest(message: SingleMessage) -> str:
    """The SHA-256 (hex) of what was asked: the message but the time it was queued."""
    return hashlib.sha256(_canonical.encode(msgspec.structs.replace(message, queued_at=0.0))).hexdigest()


def receipt(idempotency: Idempotency, once: QueuedOnce) -> MessageReceipt:
    """The receipt of a message queued with an idempotency key: the first request's, unless the key
    was used for another message (`IdempotencyConflict`)."""
    if once.request_digest != idempotency.request_digest:
        raise IdempotencyConflict(
            f"idempotency key {idempotency.key!r} was used in the last 24 hours for another "
            f"message ({once.message_id}): nothing was queued; use a new key for a new message",
            message_id=once.message_id,
        )
    return MessageReceipt(id=once.message_id)


def known(message_id: str, state: MessageState | None) -> MessageState:
    """`state`, or `UnknownMessageError` when there is none."""
    if state is None:
        raise UnknownMessageError(
            f"no message {message_id!r}: not an id send_message returned, or settled longer ago than "
            "CAMPAIGN_RETENTION"
        )
    return state


@functools.lru_cache(maxsize=32)
def _normaliser(prefix: str | None) -> NumberNormaliser:
    return NumberNormaliser(prefix)


def _recipient(to: str, prefix: str | None) -> str:
    try:
        return _normaliser(prefix).normalise(to)
    except InvalidNumber as e:
        raise SpecError(f"to {to!r} is not a number we can send to: {e.reason}") from e


def _reference(reference: str | None) -> str | None:
    if reference is None:
        return None
    if not (0 < len(reference) <= MAX_REFERENCE_CHARS and reference.isprintable()):
        raise SpecError(f"reference {reference!r} must be 1-{MAX_REFERENCE_CHARS} printable characters")
    return reference
