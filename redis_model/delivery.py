"""Delivery reports in Redis: a record a node of each request Kaleyra accepted (the most final report of
it, six bytes), a campaign's counts of its final reports, traces and times to delivery, and the reports
that came before their request was settled.

Each request's delivery string (`keys.delivery`) starts with a header its worker writes when it settles
the request: whose messages they are (a campaign's chunk, or single messages) and when they were
submitted. A report names Kaleyra's message id, `<request id>:<position>`: its record is at a fixed
offset, so a report costs Redis a few bytes and no look-up table.
"""

from __future__ import annotations

import bisect
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import redis.asyncio as aioredis

from redis_model import callbacks, keys
from redis_model.coalescing import Coalesced
from redis_model.opt_outs import OptOut, OptOutSuppression
from redis_model.scripts import source
from schemas.delivery import OPTED_OUT_TRACES, DeliveryReport, DeliveryStatus, trace_code, trace_of

HEADER_BYTES = 64
RECORD_BYTES = 6
# Kaleyra takes at most 1000 nodes a request; a position past this is no node of ours.
MAX_POSITION = 1000
CAMPAIGN, MESSAGES = "c", "m"  # a header's kind
_HEADER = struct.Struct(">cIIIB")  # kind, submitted at (s), job, offset, length of the campaign id
# At the header's end: the request's nodes Kaleyra accepted and the last one's position, so that the
# poller knows which positions to ask for (0 nodes: a header written before they were stored).
_NODES = struct.Struct(">HH")
_NODES_AT = HEADER_BYTES - _NODES.size
# Before them, a byte of flags: the request's final reports are told to a producer's callback url.
_FLAGS_AT = _NODES_AT - 1
_HAS_CALLBACKS = 1
MAX_CAMPAIGN_ID_BYTES = _FLAGS_AT - _HEADER.size
_RECORD = struct.Struct(">BBI")  # status, trace, time (s)
# A request of single messages keeps each node's number after its records (a settled single message
# keeps it nowhere else), so that an opt-out report of it can suppress it: the E.164 digits as an
# integer, 0 for a gap.
_NUMBER = struct.Struct(">Q")
# A report as `record_reports` takes it: request slot, campaign slot, position, status, trace, time, bucket.
_PACKED_REPORT = struct.Struct(">HHHBBIB")
# Times to delivery are counted in buckets of seconds, by their upper bound ("inf" past the last).
DELAY_BUCKETS_S = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400)
# How long reports wait for their request to be settled before they are dropped, and how often a
# request with early reports is looked at again while it is not settled.
EARLY_LIFETIME_S = 3600
EARLY_RECHECK_S = 1.0
# Requests whose header a receiver process remembers (they never change).
_HEADERS_REMEMBERED = 100_000


class Header(NamedTuple):
    """Whose a request's messages are: a campaign's chunk (`job`, `offset`), or single messages; and
    which of its positions are nodes Kaleyra accepted: `nodes` of them, up to `last_position` (a node
    it dropped leaves a gap). `nodes` 0: not known (a header from before they were stored). `callbacks`:
    its messages' final reports are told to the producer (the campaign's callback url, or the single
    messages' in the request's `keys.callback_targets`)."""

    kind: str
    submitted_at: int
    campaign_id: str = ""
    job: int = 0
    offset: int = 0
    nodes: int = 0
    last_position: int = 0
    callbacks: bool = False


def encode_header(header: Header) -> bytes:
    campaign_id = header.campaign_id.encode()
    if len(campaign_id) > MAX_CAMPAIGN_ID_BYTES:
        raise ValueError(f"a campaign id of {len(campaign_id)} bytes does not fit a delivery header")
    fixed = _HEADER.pack(
        header.kind.encode(), header.submitted_at, header.job, header.offset, len(campaign_id)
    )
    flags = bytes([_HAS_CALLBACKS if header.callbacks else 0])
    nodes = _NODES.pack(header.nodes, header.last_position)
    return (fixed + campaign_id).ljust(_FLAGS_AT, b"\0") + flags + nodes


def decode_header(raw: bytes) -> Header | None:
    """The header of a delivery string (None for one not written yet)."""
    if len(raw) < _HEADER.size:
        return None
    kind, submitted_at, job, offset, length = _HEADER.unpack_from(raw)
    campaign_id = raw[_HEADER.size : _HEADER.size + length].decode()
    nodes, last_position = _NODES.unpack_from(raw, _NODES_AT) if len(raw) >= HEADER_BYTES else (0, 0)
    callbacks = len(raw) >= HEADER_BYTES and bool(raw[_FLAGS_AT] & _HAS_CALLBACKS)
    return Header(kind.decode(), submitted_at, campaign_id, job, offset, nodes, last_position, callbacks)


def messages_string(header: Header, numbers: Mapping[int, str]) -> bytes:
    """A request of single messages' delivery string as its settlement writes it: the header, room for
    a record a position (up to the header's last), then each position's number (`numbers`: E.164)."""
    records = bytes(RECORD_BYTES * (header.last_position + 1))
    packed = b"".join(
        _NUMBER.pack(int(numbers[position][1:]) if position in numbers else 0)
        for position in range(header.last_position + 1)
    )
    return encode_header(header) + records + packed


def number_range(header: Header, position: int) -> tuple[int, int]:
    """Where a single message's number is in its request's delivery string (first and last byte)."""
    first = HEADER_BYTES + RECORD_BYTES * (header.last_position + 1) + _NUMBER.size * position
    return first, first + _NUMBER.size - 1


def decode_number(raw: bytes) -> str | None:
    """A number kept in a delivery string (None for none: a gap, or a string from before they were kept)."""
    if len(raw) != _NUMBER.size:
        return None
    digits = _NUMBER.unpack(raw)[0]
    return f"+{digits}" if digits else None


def last_position(message_ids: Sequence[str], *, prefix: str = "") -> int:
    """The last node's position among a request's message ids (each `prefix` + an id; "" for a node it
    dropped), in the order of its nodes (Kaleyra answers in request order): only the last id is read,
    on a settlement's hot path. 0 when there is none."""
    last = next((message_id for message_id in reversed(message_ids) if message_id), None)
    split = split_message_id(prefix + last) if last is not None else None
    return split[1] if split else 0


def unreported_positions(raw: bytes, header: Header) -> tuple[list[int], int]:
    """The positions of a delivery string's nodes without a final record (up to the header's last
    position, gaps included), and how many nodes have one."""
    final, pending = int(DeliveryStatus.DELIVERED), []
    for position in range(header.last_position + 1):
        at = HEADER_BYTES + position * RECORD_BYTES
        if at >= len(raw) or raw[at] < final:
            pending.append(position)
    return pending, header.last_position + 1 - len(pending)


class Delivery(NamedTuple):
    """A node's most final report."""

    status: DeliveryStatus
    trace: str
    at: int  # Unix seconds


def decode_record(raw: bytes) -> Delivery | None:
    """A node's record (None when no report of it came)."""
    if len(raw) < RECORD_BYTES or raw[0] == 0:
        return None
    status, trace, at = _RECORD.unpack_from(raw)
    return Delivery(DeliveryStatus(status), trace_of(trace), at)


def split_message_id(message_id: str) -> tuple[str, int] | None:
    """Kaleyra's message id as its request's id and the node's position; None if it is not one."""
    request_id, _, position = message_id.rpartition(":")
    if not request_id or not position.isdigit() or int(position) > MAX_POSITION:
        return None
    return request_id, int(position)


def request_ids(message_ids: Sequence[str]) -> list[str]:
    """The distinct requests of these message ids, in order of first appearance."""
    seen: dict[str, None] = {}
    for message_id in message_ids:
        if split := split_message_id(message_id):
            seen.setdefault(split[0])
    return list(seen)


def delay_bucket_code(seconds: float) -> int:
    """The bucket a time to delivery is counted in, as the campaign's times hash stores it: from 1, the
    position of its upper bound in DELAY_BUCKETS_S; one past them for longer."""
    return bisect.bisect_left(DELAY_BUCKETS_S, seconds) + 1


def delay_bucket(code: int) -> str:
    """A stored bucket's upper bound in seconds, or "inf"."""
    return str(DELAY_BUCKETS_S[code - 1]) if 1 <= code <= len(DELAY_BUCKETS_S) else "inf"


class Recorded(NamedTuple):
    """What a call to `record` did with its reports."""

    recorded: int = 0  # moved a node's record on
    unchanged: int = 0  # already as final (a duplicate, or one that came after a more final one)
    early: int = 0  # kept until their request is settled
    unmatched: int = 0  # a message id that is no node of a request (never recorded)
    suppressed: int = 0  # numbers that opted out, new to the account's suppression list


class AsyncDeliveryReports:
    """The receiver's store (on a `redis.asyncio.Redis` returning bytes). The reports of one turn of the
    event loop go to Redis in one script call (two when one of their requests is new to this process).

    With `suppress_opt_outs_of` (an account's sid), a message newly recorded with a final report whose
    trace is an opt-out has its number added to that account's suppression list (`opt_outs`: two or three
    more round trips for a call that has any, none otherwise): a campaign's message's number is read in
    its ledger, a single message's in its request's delivery string."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        early_lifetime_s: int = EARLY_LIFETIME_S,
        suppress_opt_outs_of: str | None = None,
    ) -> None:
        self.client = client
        self.early_lifetime_s = early_lifetime_s
        account = suppress_opt_outs_of
        self._opt_outs = None if account is None else OptOutSuppression(client, account)
        self._record = client.register_script(source("record_reports"))
        self._headers: dict[str, Header] = {}
        self._in_turn: Coalesced[Sequence[DeliveryReport], Recorded] = Coalesced(self._record_turn)

    async def record(self, reports: Sequence[DeliveryReport]) -> Recorded:
        """Store the reports durably (the call returns once Redis has them); idempotent: a report that
        comes again, or after a more final one of its message, changes nothing."""
        return await self._in_turn(reports)

    async def _record_turn(self, calls: list[Sequence[DeliveryReport]]) -> list[Recorded]:
        outcome = await self._store([report for reports in calls for report in reports])
        # The turn's counts are told to its first caller only: a sum is what a receiver counts.
        return [outcome] + [Recorded()] * (len(calls) - 1)

    async def _store(self, reports: Sequence[DeliveryReport]) -> Recorded:
        placed = [(report, split_message_id(report.message_id)) for report in reports]
        matched = [(report, where) for report, where in placed if where is not None]
        unmatched = len(placed) - len(matched)
        if not matched:
            return Recorded(unmatched=unmatched)
        await self._learn_headers({request_id for _, (request_id, _) in matched})
        verdicts = await self._run(matched)
        if any(verdict == _CAMPAIGN_UNKNOWN for verdict in verdicts):
            # A request settled since this process looked: read its header and ask again.
            again = [m for m, verdict in zip(matched, verdicts, strict=True) if verdict == _CAMPAIGN_UNKNOWN]
            await self._learn_headers({request_id for _, (request_id, _) in again}, again=True)
            retried = iter(await self._run(again))
            verdicts = [next(retried) if v == _CAMPAIGN_UNKNOWN else v for v in verdicts]
        suppressed = await self._suppress_opt_outs(matched, verdicts) if self._opt_outs is not None else 0
        return Recorded(
            recorded=verdicts.count(_RECORDED),
            unchanged=verdicts.count(_UNCHANGED),
            early=verdicts.count(_EARLY),
            unmatched=unmatched + verdicts.count(_NO_NODE),
            suppressed=suppressed,
        )  # fmt: skip

    async def _suppress_opt_outs(
        self, matched: Sequence[tuple[DeliveryReport, tuple[str, int]]], verdicts: Sequence[int]
    ) -> int:
        """Suppress the numbers of the messages these reports newly made final with an opt-out trace (a
        report that changed nothing does nothing more)."""
        opt_outs: list[OptOut] = []
        singles: list[tuple[OptOut, str, tuple[int, int]]] = []  # its request and where its number is
        for (report, (request_id, position)), verdict in zip(matched, verdicts, strict=True):
            if verdict != _RECORDED or not report.status.final:
                continue
            trace = trace_of(trace_code(report.trace))
            header = self._headers.get(request_id)
            if trace not in OPTED_OUT_TRACES or header is None:
                continue
            if header.kind == CAMPAIGN:
                where = (header.campaign_id, header.job, header.offset)
                opt_outs.append(OptOut(report.message_id, trace, *where))
            elif header.nodes:
                singles.append((OptOut(report.message_id, trace), request_id, number_range(header, position)))
        if singles:
            async with self.client.pipeline(transaction=False) as pipe:
                for _, request_id, (first, last) in singles:
                    pipe.getrange(keys.delivery(request_id), first, last)
                numbers = await pipe.execute()
            for (opt_out, _, _), raw in zip(singles, numbers, strict=True):
                if number := decode_number(raw):
                    opt_outs.append(opt_out._replace(number=number))
        if not opt_outs or self._opt_outs is None:
            return 0
        return await self._opt_outs.suppress(opt_outs)

    async def _learn_headers(self, request_ids: set[str], *, again: bool = False) -> None:
        """Read the headers of requests this process does not know yet (or, `again`, those given)."""
        wanted = [request_id for request_id in request_ids if again or request_id not in self._headers]
        if not wanted:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for request_id in wanted:
                pipe.getrange(keys.delivery(request_id), 0, HEADER_BYTES - 1)
            raw_headers = await pipe.execute()
        if len(self._headers) > _HEADERS_REMEMBERED:
            self._headers.clear()
        for request_id, raw in zip(wanted, raw_headers, strict=True):
            if header := decode_header(raw):
                self._headers[request_id] = header

    async def _run(self, matched: Sequence[tuple[DeliveryReport, tuple[str, int]]]) -> list[int]:
        request_slots: dict[str, int] = {}
        campaign_slots: dict[str, int] = {}
        packed = bytearray()
        for report, (request_id, position) in matched:
            request_slot = request_slots.setdefault(request_id, len(request_slots) + 1)
            header = self._headers.get(request_id)
            campaign_slot, bucket = 0, 0
            if header is not None and header.kind == CAMPAIGN:
                campaign_slot = campaign_slots.setdefault(header.campaign_id, len(campaign_slots) + 1)
                if report.status is DeliveryStatus.DELIVERED and report.timed:
                    bucket = delay_bucket_code(report.at - header.submitted_at)
            packed += _PACKED_REPORT.pack(request_slot, campaign_slot, position, report.status,
                                          trace_code(report.trace), int(report.at), bucket)  # fmt: skip
        script_keys = [keys.EARLY_REPORTS, *callbacks.OUTBOX]
        for request_id in request_slots:
            script_keys += [keys.delivery(request_id), keys.early_reports(request_id),
                            keys.callback_targets(request_id)]  # fmt: skip
        for campaign_id in campaign_slots:
            script_keys += [keys.campaign(campaign_id), keys.campaign_traces(campaign_id),
                            keys.campaign_delivery_times(campaign_id)]  # fmt: skip
        args: list[Any] = [time.time(), self.early_lifetime_s, HEADER_BYTES, RECORD_BYTES, bytes(packed),
                           len(keys.DELIVERY_PREFIX), *campaign_slots]  # fmt: skip
        return [int(verdict) for verdict in await self._record(keys=script_keys, args=args)]

    async def match_early(self, *, now: float | None = None, count: int = 100) -> Recorded:
        """Record the early reports of requests settled since (up to `count` requests due a call); drop
        those that waited past the early lifetime. The index holds when to look at each next: one not
        settled yet is looked at again `EARLY_RECHECK_S` later, so requests that never settle (another
        sender's ids, a settlement that failed) cannot hold the others back. Any number of processes
        may run it at once: recording is idempotent."""
        now = time.time() if now is None else now
        due: Any = await self.client.zrangebyscore(keys.EARLY_REPORTS, "-inf", now, start=0, num=count)
        recorded, dropped = Recorded(), 0
        for member in due:
            request_id = keys.request_of(member.decode())
            header = await self.client.getrange(keys.delivery(request_id), 0, HEADER_BYTES - 1)
            held: Any = await self.client.hgetall(keys.early_reports(request_id))
            since = float(held.pop(_SINCE, now))
            if not header and held and now - since < self.early_lifetime_s:
                await self.client.zadd(keys.EARLY_REPORTS, {member: now + EARLY_RECHECK_S}, xx=True)
                continue
            if header:
                # Recorded before they are deleted: a process that dies between the two leaves them for
                # the next pass, which records them again, changing nothing. Once the header is there no
                # report of the request waits early any more, so none comes in between.
                done = await self._store(_early_reports(request_id, held))
                recorded = Recorded(recorded.recorded + done.recorded, recorded.unchanged + done.unchanged,
                                    recorded.early + done.early, recorded.unmatched,
                                    recorded.suppressed + done.suppressed)  # fmt: skip
            else:  # past the lifetime, or its hash expired: never matched
                dropped += len(held)
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.delete(keys.early_reports(request_id))
                pipe.zrem(keys.EARLY_REPORTS, member)
                await pipe.execute()
        return recorded._replace(unmatched=recorded.unmatched + dropped)

    async def delivery_of(self, message_id: str) -> Delivery | None:
        """The most final report of a message (by Kaleyra's id); None if none came."""
        where = split_message_id(message_id)
        if where is None:
            return None
        request_id, position = where
        offset = HEADER_BYTES + position * RECORD_BYTES
        raw: Any = await self.client.getrange(keys.delivery(request_id), offset, offset + RECORD_BYTES - 1)
        return decode_record(raw)


_UNCHANGED, _RECORDED, _EARLY, _CAMPAIGN_UNKNOWN, _NO_NODE = 0, 1, 2, 3, 4
_SINCE = b"since"  # the early hash's field holding its first report's arrival


def _early_reports(request_id: str, held: dict[bytes, bytes]) -> list[DeliveryReport]:
    """The reports kept in a request's early hash (position -> record)."""
    reports = []
    for position, raw in held.items():
        status, trace, at = _RECORD.unpack_from(raw)
        message_id = f"{request_id}:{position.decode()}"
        reports.append(DeliveryReport(message_id, DeliveryStatus(status), trace_of(trace), float(at)))
    return reports
