"""Single messages as workers consume them: read a lane's stream in batches, mark them sending, settle,
release, and reclaim what dead consumers left.

A message's stream entry stays pending (in the group's PEL) from its read until it is settled; its
status hash (`keys.message`) says whether it may have been POSTed: `sending` with a lease. A consumer
that dies leaves its entries pending; `reclaim` takes those idle past the lease: one marked
`sending` may have reached Kaleyra, which has no idempotency, so it is settled `unknown`
(`WORKER_LOST`); one never marked was never sent, and is sent by the reclaiming worker.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import msgspec
import redis
import redis.asyncio as aioredis

from redis_model import callbacks, delivery, keys, records
from redis_model.scripts import source
from schemas.campaign import MessageType
from schemas.message import MessageStatus, SingleMessage

# The code of a message whose stream entry does not decode (written by something other than the
# intake): it is failed, never sent, rather than stopping its lane's reader.
UNREADABLE_CODE = "UNREADABLE"


_Entry = tuple[Any, dict[bytes, bytes]]  # a stream entry as redis-py reads it: its id, its fields


class Taken(NamedTuple):
    """A single message this consumer read from its lane: pending until settled or taken over."""

    lane: keys.Lane
    entry: str  # the stream entry's id
    message: SingleMessage

    @property
    def id(self) -> str:
        """The message's public id."""
        return keys.message_id(self.lane, self.entry)


class Settled(NamedTuple):
    """How a taken message ended: submitted (with Kaleyra's id), failed (with a code) or unknown."""

    taken: Taken
    status: MessageStatus
    message_id: str = ""
    code: str = ""


class Reclaimed(NamedTuple):
    """What a reclaim pass took over: messages never marked (to send now), and messages marked
    `sending` whose lease ran out (their outcome is unknown: to settle so, never to send again)."""

    to_send: list[Taken]
    lost: list[Taken]


class MessageLanes:
    """The lanes' streams as a consumer (`consumer`: a worker process) of `keys.MESSAGE_GROUP` sees them."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        consumer: str,
        lease_ms: int,
        retention_s: float,
        poll_after_s: float = 0.0,
    ) -> None:
        self.client = client
        self.consumer = consumer
        self.lease_ms = lease_ms
        self.retention_s = int(retention_s)
        # A request Kaleyra accepted is indexed for the status query this long after (0: not indexed).
        self.poll_after_s = poll_after_s
        self._mark = client.register_script(source("mark_sending"))
        self._settle = client.register_script(source("settle_messages"))

    async def ensure_groups(self) -> None:
        """Create each lane's stream and consumer group if missing; from the stream's start, so that
        messages queued before any worker ran are read."""
        for lane in keys.LANES:
            try:
                stream = keys.message_stream(lane)
                await self.client.xgroup_create(stream, keys.MESSAGE_GROUP, id="0", mkstream=True)
            except redis.ResponseError as e:
                if "BUSYGROUP" not in str(e):
                    raise

    async def read(self, lane: keys.Lane, count: int, *, block_ms: int | None = None) -> list[Taken]:
        """Up to `count` new messages of the lane, waiting up to `block_ms` for the first (None: not at
        all). They are pending for this consumer from now on."""
        stream = keys.message_stream(lane)
        try:
            reply: Any = await self.client.xreadgroup(
                keys.MESSAGE_GROUP, self.consumer, {stream: ">"}, count=count, block=block_ms
            )
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            await self.ensure_groups()  # the stream was deleted (a flushed database): read on next time
            return []
        return await self._readable(lane, [item for _stream, entries in reply or () for item in entries])

    async def _readable(self, lane: keys.Lane, entries: Sequence[_Entry]) -> list[Taken]:
        """The entries' messages; one that does not decode is settled failed (`UNREADABLE`) at once."""
        taken = [_taken(lane, entry, fields) for entry, fields in entries]
        unreadable = [one for one in taken if one.message is _UNREADABLE]
        if unreadable:
            await self.settle(
                [Settled(one, MessageStatus.FAILED, code=UNREADABLE_CODE) for one in unreadable]
            )
            return [one for one in taken if one.message is not _UNREADABLE]
        return taken

    async def mark_sending(self, batch: Sequence[Taken]) -> list[Taken]:
        """Mark the batch `sending` under a lease, before its POST; returns those marked (one another
        worker reclaimed meanwhile is that worker's now, and not marked)."""
        if not batch:
            return []
        lane = batch[0].lane
        positions = await self._mark(
            keys=[keys.message_stream(lane), *(keys.message(taken.id) for taken in batch)],
            args=[keys.MESSAGE_GROUP, self.consumer, self.lease_ms, *(taken.entry for taken in batch)],
        )
        return [batch[position - 1] for position in positions]

    async def settle(self, outcomes: Sequence[Settled]) -> None:
        """Record each message's end in its hash (expiring after the retention) and remove its stream
        entry; write the delivery header of each request Kaleyra accepted (with its nodes: the messages
        of it) and index it for the status query: a script call per lane (one round trip for a batch,
        which is of one lane)."""
        now = repr(time.time())
        by_lane: dict[keys.Lane, list[Settled]] = {}
        for outcome in outcomes:
            by_lane.setdefault(outcome.taken.lane, []).append(outcome)
        for lane, settled in by_lane.items():
            requests = _requests(settled, int(float(now)))
            request_values = [value for request_id, told in requests.items() for value in (request_id, *told)]
            await self._settle(
                keys=[keys.message_stream(lane), keys.UNREPORTED, *callbacks.OUTBOX,
                      *(keys.message(outcome.taken.id) for outcome in settled),
                      *(key for request_id in requests for key in (keys.delivery(request_id),
                                                                   keys.callback_targets(request_id)))],
                args=[keys.MESSAGE_GROUP, now, self.retention_s, len(settled), self.poll_after_s,
                      *request_values, *_settled_values(settled, float(now))],
            )  # fmt: skip

    async def release(self, batch: Sequence[Taken], *, failed_attempt: bool = False) -> list[int]:
        """Nothing of the batch was sent: each reads as queued again; its entry stays pending, for a
        reclaim pass (this worker's or another's) to take and send once it has been idle a lease.
        `failed_attempt`: the gateway refused it with a transient error, counted; returns each one's
        count (0 when not counted)."""
        if not batch:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for taken in batch:
                key = keys.message(taken.id)
                pipe.hset(key, keys.STATUS, MessageStatus.QUEUED.value)
                pipe.hdel(key, keys.OWNER)
                if failed_attempt:
                    pipe.hincrby(key, keys.ATTEMPTS, 1)
            replies = await pipe.execute()
        return [int(n) for n in replies[2::3]] if failed_attempt else [0] * len(batch)

    async def reclaim(self, lane: keys.Lane, count: int) -> Reclaimed:
        """Take over up to `count` of the lane's entries idle past the lease (their consumer is dead or
        gave them back) and sort them: never marked `sending` (or released) -> to send; marked, lease
        over -> lost. One marked with its lease still running stays pending here, for its owner to settle."""
        stream = keys.message_stream(lane)
        try:
            reply = await self.client.xautoclaim(
                stream, keys.MESSAGE_GROUP, self.consumer, self.lease_ms, start_id="0-0", count=count
            )
        except redis.ResponseError as e:
            if "NOGROUP" not in str(e):
                raise
            return Reclaimed([], [])
        taken = await self._readable(lane, [(entry, fields) for entry, fields in reply[1] if fields])
        if not taken:
            return Reclaimed([], [])
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.time()
            for one in taken:
                pipe.hmget(keys.message(one.id), keys.STATUS, keys.OWNER)
            clock, *states = await pipe.execute()
        now_ms = clock[0] * 1000 + clock[1] // 1000
        to_send, lost = [], []
        for one, (status, owner) in zip(taken, states, strict=True):
            if status is None or status == MessageStatus.QUEUED.value.encode():
                to_send.append(one)
            elif status == MessageStatus.SENDING.value.encode() and _lease_end(owner) <= now_ms:
                lost.append(one)
        return Reclaimed(to_send, lost)


def _taken(lane: keys.Lane, entry: bytes | str, fields: dict[bytes, bytes]) -> Taken:
    """The entry's message (`_UNREADABLE` when it holds none that decodes)."""
    entry_id = entry.decode() if isinstance(entry, bytes) else entry
    try:
        return Taken(lane, entry_id, records.decode_message(fields[keys.MESSAGE_FIELD.encode()]))
    except (KeyError, msgspec.DecodeError):
        return Taken(lane, entry_id, _UNREADABLE)


# Stands for the message of an entry that does not decode, so that it is settled like any other.
_UNREADABLE = SingleMessage(to="", body="", sender="", type=MessageType.TXN)


def _requests(settled: Sequence[Settled], now: int) -> dict[str, tuple[bytes, bytes]]:
    """By the id of each request the settled messages were accepted in: its delivery string (the header,
    room for the records, its messages' numbers) and the callback targets of its messages that have a
    callback url (JSON, position -> target; b"" for none)."""
    positions: dict[str, dict[int, str]] = {}
    targets: dict[str, dict[int, bytes]] = {}
    for outcome in settled:
        if where := delivery.split_message_id(outcome.message_id):
            positions.setdefault(where[0], {})[where[1]] = outcome.taken.message.to
            if outcome.taken.message.callback_url is not None:
                targets.setdefault(where[0], {})[where[1]] = callbacks.message_target(
                    outcome.taken.id, outcome.taken.message
                )
    requests = {}
    for request_id, numbers in positions.items():
        header = delivery.Header(delivery.MESSAGES, now, nodes=len(numbers), last_position=max(numbers),
                                 callbacks=request_id in targets)  # fmt: skip
        told = targets.get(request_id)
        requests[request_id] = (
            delivery.messages_string(header, numbers),
            callbacks.encode_targets(told) if told else b"",
        )
    return requests


def _settled_values(settled: Sequence[Settled], now: float) -> list[str | bytes]:
    """`settle_messages`'s seven values a message: entry, status, message id, code, "=" + reference,
    callback url and the callback's event (both "" without a url)."""
    values: list[str | bytes] = []
    for outcome in settled:
        message = outcome.taken.message
        reference = message.reference
        values += [outcome.taken.entry, outcome.status.value, outcome.message_id, outcome.code,
                   "" if reference is None else "=" + reference]  # fmt: skip
        if message.callback_url is None:
            values += ["", ""]
        else:
            event = callbacks.message_settled(
                outcome.taken.id, message, outcome.status, outcome.message_id, outcome.code, now
            )
            values += [message.callback_url, event]
    return values


def _lease_end(owner: bytes | None) -> int:
    """The lease's end (ms) in an `owner` field, `consumer|lease end`; 0 (long over) when unreadable."""
    if owner is None:
        return 0
    _consumer, _, end = owner.rpartition(b"|")
    return int(end) if end.isdigit() else 0
