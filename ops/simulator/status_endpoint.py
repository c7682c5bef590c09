"""`GET /v1/{sid}/sms/status?message_ids=ID1,ID2`: each known message's status now, as Kaleyra answers
(delivery-reports.md): `{"data": [{"campaign_id", "status", "status_details"}], "error": {}}`."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web

from ops.simulator import replies
from ops.simulator.delivery import DeliveryReports
from ops.simulator.delivery.statuses import DELIVERED, STATUS_DETAILS_DELIVERED
from ops.simulator.faults import Faults
from ops.simulator.record import SimulatorRecord


class StatusEntry(msgspec.Struct, frozen=True, gc=False):
    campaign_id: str  # Kaleyra's name for the message id here
    status: str
    status_details: str


class StatusReply(msgspec.Struct, frozen=True):
    data: list[StatusEntry]
    error: dict[str, str] = {}


class StatusEndpoint:
    """The same key, SID and outage checks as the send endpoint; counted apart from its requests.

    An id no plan decided (accepted while reports were off) is Delivered if the simulator accepted
    it. An id it never gave is left out of `data`: Kaleyra documents no answer for one, and leaving
    it out is what a client matching entries by id has to cope with anyway.
    """

    __slots__ = ("_accepted", "_api_key", "_clears", "_faults", "_indexed", "_record", "_reports", "_sid")

    def __init__(
        self, api_key: str, sid: str | None, record: SimulatorRecord, faults: Faults, reports: DeliveryReports
    ) -> None:
        self._api_key = api_key
        self._sid = sid
        self._record = record
        self._faults = faults
        self._reports = reports
        self._accepted: set[str] = set()  # ids of record.messages[:_indexed], built on first need
        self._indexed = 0
        self._clears = record.clears

    async def handle(self, request: web.Request) -> web.Response:
        if self._faults.down_until is not None:
            return web.Response(status=503, text="service unavailable", headers={"Connection": "close"})
        if self._faults.refuse_key or request.headers.get("api-key") != self._api_key:
            return _json(401, replies.UNAUTHORIZED)
        if self._sid is not None and request.match_info["sid"] != self._sid:
            return _json(404, replies.NOT_FOUND)
        self._reports.record.status_queries += 1
        ids = [part.strip() for part in request.query.get("message_ids", "").split(",") if part.strip()]
        if not ids:
            reply = StatusReply(data=[], error={"message_ids": "missing or empty"})
            return _json(400, replies.ENCODER.encode(reply))
        now = time.time()
        data: list[StatusEntry] = []
        for message_id in ids:
            current = self._reports.current(message_id, now)
            if current is None and self._was_accepted(message_id):
                current = DELIVERED, STATUS_DETAILS_DELIVERED
            if current is not None:
                data.append(StatusEntry(message_id, *current))
        return _json(200, replies.ENCODER.encode(StatusReply(data=data)))

    def _was_accepted(self, message_id: str) -> bool:
        messages = self._record.messages
        if self._record.clears != self._clears:
            self._accepted.clear()
            self._indexed, self._clears = 0, self._record.clears
        self._accepted.update(message.message_id for message in messages[self._indexed :])
        self._indexed = len(messages)
        return message_id in self._accepted


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
