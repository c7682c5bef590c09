"""`POST /v1/{sid}/sms/json`: refuse, fail on purpose, or accept and record, as Kaleyra would."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec
from aiohttp import web

from ops.simulator import replies
from ops.simulator.delivery import DeliveryReports
from ops.simulator.faults import Faults
from ops.simulator.incoming import (
    DECODER,
    IncomingRequest,
    effective_body,
    effective_sender,
    effective_unicode,
)
from ops.simulator.record import AcceptedMessage, SimulatorRecord
from ops.simulator.replies import Rejection
from ops.simulator.validation import recipient_digits, validate


class SmsEndpoint:
    """Holds its state as attributes: one lookup per request instead of `request.app[...]`.

    The checks every endpoint shares (key, SID, injected faults) are here; a subclass for another
    endpoint replaces `_decode`, `_nodes`, `_validate` and `_accept`.
    """

    __slots__ = ("_api_key", "_faults", "_record", "_reports", "_sid")

    def __init__(
        self,
        api_key: str,
        sid: str | None,
        record: SimulatorRecord,
        faults: Faults,
        reports: DeliveryReports | None = None,
    ) -> None:
        self._api_key = api_key
        self._sid = sid
        self._record = record
        self._faults = faults
        self._reports = reports

    async def handle(self, request: web.Request) -> web.Response:
        """The latency is a round trip: the request waits half of it before it is processed, the
        reply the other half. All of it on the way in would have the requests that arrive while one
        is processed (on one core, one at a time) wake together and wait on each other: a convoy no
        gateway of many servers forms, which held the requests in flight far below what the latency
        allows."""
        record = self._record
        index = record.arrive()
        try:
            transit_s = self._faults.latency_ms / 2000
            if transit_s:
                await asyncio.sleep(transit_s)
            response = await self._process(request, index)
            if transit_s:
                await asyncio.sleep(transit_s)
            return response
        finally:  # also when the handler is cancelled (a disconnect, a shutdown)
            record.in_flight -= 1

    async def _process(self, request: web.Request, index: int) -> web.Response:
        record = self._record
        reference = str(index)
        if self._faults.down_until is not None:
            # Down: the port refuses connections; one kept alive from before meets the front's 503,
            # never a connection dropped with the request in it (which a client could not tell from
            # a request processed).
            record.reject("DOWN")
            return web.Response(status=503, text="service unavailable", headers={"Connection": "close"})
        if self._faults.refuse_key or request.headers.get("api-key") != self._api_key:
            record.reject("UNAUTHORIZED")
            return _json(401, replies.UNAUTHORIZED)
        if self._sid is not None and request.match_info["sid"] != self._sid:
            record.reject("NOT_FOUND")
            return _json(404, replies.NOT_FOUND)
        try:
            payload = self._decode(await request.read())
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            record.reject("E700")
            return _json(400, replies.ENCODER.encode(replies.invalid_json(error, reference)))
        record.max_nodes = max(record.max_nodes, self._nodes(payload))
        if self._faults.inject_e403():
            status, body = replies.e403(record.e403_injected, reference)
            record.e403_injected += 1
            return _json(status, body)
        now = datetime.now(UTC)
        if rejection := self._validate(payload, reference, now):
            status, reply = rejection
            record.reject(replies.code_of(reply))
            return _json(status, replies.ENCODER.encode(reply))
        success, accepted = self._accept(payload, index, now)
        record.accepted_requests += 1
        record.messages.extend(accepted)
        record.arrivals.append((time.monotonic(), len(accepted)))
        if self._reports is not None:
            self._reports.accept(accepted)
        if self._faults.inject_slow_reply():
            await self._hold_reply(record)
        return _json(200, replies.ENCODER.encode(success))

    # The /sms/json endpoint's own parts.
    def _decode(self, body: bytes) -> Any:
        return DECODER.decode(body)

    def _nodes(self, payload: Any) -> int:
        return len(payload.sms) if payload.sms is not None else 0

    def _validate(self, payload: Any, reference: str, now: datetime) -> Rejection | None:
        return validate(payload, reference, now)

    def _accept(
        self, payload: Any, index: int, now: datetime
    ) -> tuple[msgspec.Struct, list[AcceptedMessage]]:
        return accept(payload, index, now)

    async def _hold_reply(self, record: SimulatorRecord) -> None:
        """Kaleyra has processed the request; only its answer is late (a client timeout, or a
        worker killed between its POST and recording the outcome)."""
        record.slow_replies += 1
        record.replies_held += 1
        try:
            await asyncio.sleep(self._faults.slow_reply_ms / 1000)
        finally:  # also when the handler is cancelled (a disconnect, a shutdown)
            record.replies_held -= 1


def accept(
    payload: IncomingRequest, request_index: int, now: datetime
) -> tuple[replies.SuccessReply, list[AcceptedMessage]]:
    """Kaleyra's reply and the record's entries for a valid request, in one pass over its nodes.

    Nodes whose number is invalid are left out of both. A message id's suffix is the node's
    index in the request, so a client can tell which nodes were dropped.
    """
    batch = str(uuid.uuid4())
    top_template = payload.template_id
    sms: list[replies.ReplySms] = []
    accepted: list[AcceptedMessage] = []
    for position, node in enumerate(payload.sms or ()):
        digits = recipient_digits(node.to)
        if digits is None:
            continue
        message_id = f"{batch}:{position}"
        body = effective_body(node, payload) or ""  # validate() made sure it is set
        sender = effective_sender(node, payload) or ""
        sms.append(replies.ReplySms(body, sender, message_id, digits, node.template_id or top_template))
        unicode = effective_unicode(node, payload)
        accepted.append(
            AcceptedMessage(message_id, str(node.to), body, sender, unicode, request_index, payload.time)
        )
    reply = replies.SuccessReply(
        body=payload.body,
        createdDateTime=now.strftime("%Y-%m-%d %H:%M:%S+00:00"),
        id=batch,
        sms=sms,
        source=payload.source or "API",
        type=payload.type or "DEFAULT",
    )
    return reply, accepted


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
