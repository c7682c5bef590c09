"""Queue single messages on their lane's stream (once per idempotency key) and read where one stands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import redis
import redis.asyncio as aioredis

from redis_model import keys, records
from redis_model.keys import Lane
from redis_model.scripts import source
from schemas.message import MessageState, MessageStatus, SingleMessage

_SEPARATOR = "|"  # of the idempotency key's `message id|request digest`
# Fields of the status hash a worker writes (keys.message).


class QueuedOnce(NamedTuple):
    """What an idempotency key holds: the message its first request queued, and that request's digest."""

    message_id: str
    request_digest: str


def _entry(message: SingleMessage) -> dict[str, bytes]:
    return {keys.MESSAGE_FIELD: records.encode_message(message)}


def _queue_once_call(
    message: SingleMessage, lane: Lane, scope: str, key_digest: str, request_digest: str
) -> tuple[list[str], list[Any]]:
    """The `queue_message` script's keys and arguments."""
    return (
        [keys.idempotency(scope, key_digest), keys.message_stream(lane)],
        [
            keys.MESSAGE_FIELD,
            records.encode_message(message),
            request_digest,
            keys.IDEMPOTENCY_LIFETIME_S,
            keys.message_id(lane, ""),
        ],
    )


def _queued_once(held: bytes) -> QueuedOnce:
    message_id, _, request_digest = held.decode().partition(_SEPARATOR)
    return QueuedOnce(message_id, request_digest)


def _message_ids(lanes: Sequence[Lane], entry_ids: Sequence[bytes]) -> list[str]:
    return [keys.message_id(lane, entry_id.decode()) for lane, entry_id in zip(lanes, entry_ids, strict=True)]


def _state(
    message_id: str, entries: Sequence[tuple[bytes, dict[bytes, bytes]]], status: dict[bytes, bytes]
) -> MessageState | None:
    """Where a message stands from its status hash (once a worker took it) or else its stream entry
    (still queued); None when neither is there."""
    text = {field.decode(): value.decode() for field, value in status.items()}
    if keys.STATUS in text:
        return MessageState(
            id=message_id,
            status=MessageStatus(text[keys.STATUS]),
            message_id=text.get(keys.MESSAGE_ID) or None,
            code=text.get(keys.CODE) or None,
            reference=text.get(keys.REFERENCE) or None,
        )
    if entries:
        queued = records.decode_message(entries[0][1][keys.MESSAGE_FIELD.encode()])
        return MessageState(id=message_id, status=MessageStatus.QUEUED, reference=queued.reference)
    return None


def _lookup(message_id: str) -> tuple[str, str, str] | None:
    """The stream, entry id and status hash to read for `message_id`; None for no such id."""
    found = keys.message_entry(message_id)
    if found is None:
        return None
    lane, entry_id = found
    return keys.message_stream(lane), entry_id, keys.message(message_id)


class MessageIntake:
    """Single messages in and their state out, on one `redis.Redis` (bytes, not decoded responses)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client
        self._queue_once = client.register_script(source("queue_message"))

    def queue(self, message: SingleMessage, lane: Lane) -> str:
        """Add `message` to its lane's stream (one XADD); return its message id."""
        entry_id: bytes = self.client.xadd(keys.message_stream(lane), _entry(message))  # type: ignore[arg-type, assignment]
        return keys.message_id(lane, entry_id.decode())

    def queue_once(
        self, message: SingleMessage, lane: Lane, scope: str, key_digest: str, request_digest: str
    ) -> QueuedOnce:
        """Queue `message` unless the idempotency key `key_digest` (of `scope`) was used in the last 24
        hours; either way, what the key holds (compare its digest with `request_digest`)."""
        script_keys, args = _queue_once_call(message, lane, scope, key_digest, request_digest)
        held: bytes = self._queue_once(keys=script_keys, args=args)  # type: ignore[assignment]
        return _queued_once(held)

    def queue_many(self, messages: Iterable[tuple[SingleMessage, Lane]]) -> list[str]:
        """Queue each message on its lane, in one round trip; their message ids, in order."""
        lanes = []
        with self.client.pipeline(transaction=False) as pipe:
            for message, lane in messages:
                pipe.xadd(keys.message_stream(lane), _entry(message))  # type: ignore[arg-type]
                lanes.append(lane)
            entry_ids = pipe.execute()
        return _message_ids(lanes, entry_ids)

    def state(self, message_id: str) -> MessageState | None:
        """Where the message stands; None for an id that is malformed, unknown or expired."""
        where = _lookup(message_id)
        if where is None:
            return None
        stream, entry_id, status_key = where
        # The entry before the hash: a worker writes the hash before it deletes the entry, so a message
        # is never missed between the two reads.
        with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(stream, entry_id, entry_id)
            pipe.hgetall(status_key)
            entries, status = pipe.execute()
        return _state(message_id, entries, status)


class AsyncMessageIntake:
    """`MessageIntake` on a `redis.asyncio.Redis`: the same commands, awaited."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._queue_once = client.register_script(source("queue_message"))

    async def queue(self, message: SingleMessage, lane: Lane) -> str:
        entry_id: bytes = await self.client.xadd(keys.message_stream(lane), _entry(message))  # type: ignore[arg-type, assignment]
        return keys.message_id(lane, entry_id.decode())

    async def queue_once(
        self, message: SingleMessage, lane: Lane, scope: str, key_digest: str, request_digest: str
    ) -> QueuedOnce:
        script_keys, args = _queue_once_call(message, lane, scope, key_digest, request_digest)
        held: bytes = await self._queue_once(keys=script_keys, args=args)
        return _queued_once(held)

    async def queue_many(self, messages: Iterable[tuple[SingleMessage, Lane]]) -> list[str]:
        lanes = []
        async with self.client.pipeline(transaction=False) as pipe:
            for message, lane in messages:
                pipe.xadd(keys.message_stream(lane), _entry(message))  # type: ignore[arg-type]
                lanes.append(lane)
            entry_ids = await pipe.execute()
        return _message_ids(lanes, entry_ids)

    async def state(self, message_id: str) -> MessageState | None:
        where = _lookup(message_id)
        if where is None:
            return None
        stream, entry_id, status_key = where
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(stream, entry_id, entry_id)
            pipe.hgetall(status_key)
            entries, status = await pipe.execute()
        return _state(message_id, entries, status)
