"""Queue single messages on their lane's stream (once per idempotency key) and read where one stands."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import msgspec
import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from redis_model import callbacks, delivery, keys, records
from redis_model.coalescing import Coalesced
from redis_model.keys import Lane
from redis_model.scripts import source
from schemas.delivery import DeliveryStatus
from schemas.message import MessageState, MessageStatus, SingleMessage

_SEPARATOR = "|"  # of the idempotency key's `message id|request digest`
# Fields of the status hash a worker writes (keys.message).


class QueuedOnce(NamedTuple):
    """What an idempotency key holds: the message its first request queued, and that request's digest;
    `replayed` when the key held it already, so that this request queued nothing."""

    message_id: str
    request_digest: str
    replayed: bool = False


class Once(NamedTuple):
    """A message to queue once per idempotency key: the key's digest and the request's."""

    key_digest: str
    request_digest: str


# A batch's item: a message, its lane and, to queue it once per idempotency key, its `Once`.
BatchEntry = tuple[SingleMessage, Lane, Once | None]


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


def _queued_once(reply: list[Any]) -> QueuedOnce:
    """The `queue_message` script's reply: what the key holds, and 1 when it held it already."""
    held, replayed = reply
    message_id, _, request_digest = held.decode().partition(_SEPARATOR)
    return QueuedOnce(message_id, request_digest, bool(replayed))


def _stage(pipe: Any, entries: Iterable[BatchEntry], scope: str, script_sha: str) -> None:
    """Add to `pipe` (sync or asyncio: adding is the same) an XADD for each entry without an idempotency
    key and an EVALSHA of `queue_message` for each with one, in order."""
    for message, lane, once in entries:
        if once is None:
            pipe.xadd(keys.message_stream(lane), _entry(message))
        else:
            script_keys, args = _queue_once_call(message, lane, scope, once.key_digest, once.request_digest)
            pipe.evalsha(script_sha, len(script_keys), *script_keys, *args)


def _without_script(replies: Sequence[Any]) -> list[int]:
    """The replies' positions that are NOSCRIPT (Redis lost the script: load it and run them again);
    any other error is raised, as `execute()` would have."""
    for reply in replies:
        if isinstance(reply, Exception) and not isinstance(reply, NoScriptError):
            raise reply
    return [position for position, reply in enumerate(replies) if isinstance(reply, NoScriptError)]


def _raise_any(replies: Sequence[Any]) -> None:
    """Raise the first error among `replies` (a NOSCRIPT again, after the script was loaded)."""
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply


def _outcomes(entries: Sequence[BatchEntry], replies: Sequence[Any]) -> list[str | QueuedOnce]:
    """Per entry: its message id (without a key) or what its key holds (with one)."""
    return [
        keys.message_id(lane, reply.decode()) if once is None else _queued_once(reply)
        for (_, lane, once), reply in zip(entries, replies, strict=True)
    ]


_LANE_STREAMS = [keys.message_stream(lane) for lane in keys.LANES]
_LANE_POSITIONS = {lane: position for position, lane in enumerate(keys.LANES, start=1)}


def _queue_many_call(messages: Iterable[tuple[SingleMessage, Lane]]) -> tuple[list[Lane], list[Any]]:
    """The messages' lanes, and the `queue_messages` script's arguments for them."""
    lanes: list[Lane] = []
    args: list[Any] = [keys.MESSAGE_FIELD]
    for message, lane in messages:
        lanes.append(lane)
        args += (_LANE_POSITIONS[lane], records.encode_message(message))
    return lanes, args


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
            callbacks=callbacks.callbacks_of(text),
        )
    if entries:
        queued = records.decode_message(entries[0][1][keys.MESSAGE_FIELD.encode()])
        return MessageState(id=message_id, status=MessageStatus.QUEUED, reference=queued.reference)
    return None


def _delivery_record(state: MessageState) -> tuple[str, int, int] | None:
    """Where a submitted message's delivery record is (key, first and last byte); None for another."""
    if state.status is not MessageStatus.SUBMITTED or not state.message_id:
        return None
    where = delivery.split_message_id(state.message_id)
    if where is None:
        return None
    request_id, position = where
    first = delivery.HEADER_BYTES + position * delivery.RECORD_BYTES
    return keys.delivery(request_id), first, first + delivery.RECORD_BYTES - 1


def _delivered(state: MessageState, raw: bytes) -> MessageState:
    """A submitted message's state, delivered or undelivered once a final report of it came."""
    record = delivery.decode_record(raw)
    if record is None or not record.status.final:
        return state
    status = (
        MessageStatus.DELIVERED if record.status is DeliveryStatus.DELIVERED else MessageStatus.UNDELIVERED
    )
    return msgspec.structs.replace(state, status=status, trace=record.trace or None, reported_at=record.at)


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
        self._queue_many = client.register_script(source("queue_messages"))

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
        reply: list[Any] = self._queue_once(keys=script_keys, args=args)  # type: ignore[assignment]
        return _queued_once(reply)

    def queue_many(self, messages: Iterable[tuple[SingleMessage, Lane]]) -> list[str]:
        """Queue each message on its lane, in one command (`queue_messages`); their message ids, in order."""
        lanes, args = _queue_many_call(messages)
        if not lanes:
            return []
        return _message_ids(lanes, self._queue_many(keys=_LANE_STREAMS, args=args))  # type: ignore[arg-type]

    def queue_batch(self, entries: Sequence[BatchEntry], scope: str) -> list[str | QueuedOnce]:
        """Queue each entry on its lane, those with a `Once` as `queue_once` does (an entry whose key an
        earlier entry used gets what that one stored), in one round trip (two more if Redis lost the
        script); per entry, its message id or what its key holds."""
        if all(once is None for _, _, once in entries):
            return list(self.queue_many((message, lane) for message, lane, _ in entries))
        replies = self._run(entries, scope)
        if missing := _without_script(replies):
            self.client.script_load(self._queue_once.script)
            for position, reply in zip(missing, self._run([entries[i] for i in missing], scope), strict=True):
                replies[position] = reply
            _raise_any(replies)
        return _outcomes(entries, replies)

    def _run(self, entries: Sequence[BatchEntry], scope: str) -> list[Any]:
        with self.client.pipeline(transaction=False) as pipe:
            _stage(pipe, entries, scope, self._queue_once.sha)
            return pipe.execute(raise_on_error=False)

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
        state = _state(message_id, entries, status)
        if state is None or (record_at := _delivery_record(state)) is None:
            return state
        raw: Any = self.client.getrange(*record_at)
        return _delivered(state, raw)


class AsyncMessageIntake:
    """`MessageIntake` on a `redis.asyncio.Redis`: the same commands, awaited. The messages `queue`d
    in one turn of the event loop (a service's requests, a producer's `gather`) go to Redis in one
    pipeline: one round trip and one connection for all of them."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self._queue_once = client.register_script(source("queue_message"))
        self._queue_many = client.register_script(source("queue_messages"))
        self._queue_in_turn: Coalesced[tuple[SingleMessage, Lane], str] = Coalesced(self.queue_many)

    async def queue(self, message: SingleMessage, lane: Lane) -> str:
        return await self._queue_in_turn((message, lane))

    async def load_scripts(self) -> None:
        """Load the intake's scripts into Redis where it lacks them (at start, and when Redis lost them),
        so that no message pays a round trip more for it."""
        scripts = [self._queue_once, self._queue_many]
        loaded = await self.client.script_exists(*(script.sha for script in scripts))
        for script, there in zip(scripts, loaded, strict=True):
            if not there:
                await self.client.script_load(script.script)

    async def queue_once(
        self, message: SingleMessage, lane: Lane, scope: str, key_digest: str, request_digest: str
    ) -> QueuedOnce:
        script_keys, args = _queue_once_call(message, lane, scope, key_digest, request_digest)
        reply: list[Any] = await self._queue_once(keys=script_keys, args=args)
        return _queued_once(reply)

    async def queue_many(self, messages: Iterable[tuple[SingleMessage, Lane]]) -> list[str]:
        lanes, args = _queue_many_call(messages)
        if not lanes:
            return []
        return _message_ids(lanes, await self._queue_many(keys=_LANE_STREAMS, args=args))

    async def queue_batch(self, entries: Sequence[BatchEntry], scope: str) -> list[str | QueuedOnce]:
        if all(once is None for _, _, once in entries):
            return list(await self.queue_many((message, lane) for message, lane, _ in entries))
        replies = await self._run(entries, scope)
        if missing := _without_script(replies):
            await self.client.script_load(self._queue_once.script)
            for position, reply in zip(
                missing, await self._run([entries[i] for i in missing], scope), strict=True
            ):
                replies[position] = reply
            _raise_any(replies)
        return _outcomes(entries, replies)

    async def _run(self, entries: Sequence[BatchEntry], scope: str) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            _stage(pipe, entries, scope, self._queue_once.sha)
            return await pipe.execute(raise_on_error=False)

    async def state(self, message_id: str) -> MessageState | None:
        where = _lookup(message_id)
        if where is None:
            return None
        stream, entry_id, status_key = where
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.xrange(stream, entry_id, entry_id)
            pipe.hgetall(status_key)
            entries, status = await pipe.execute()
        state = _state(message_id, entries, status)
        if state is None or (record_at := _delivery_record(state)) is None:
            return state
        raw: Any = await self.client.getrange(*record_at)
        return _delivered(state, raw)
