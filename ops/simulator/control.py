"""`/_simulator/*`: read the record, clear it, and change faults, from tests in other processes."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ops.simulator.faults import UPDATE_DECODER, Faults
from ops.simulator.record import SimulatorRecord
from ops.simulator.replies import ENCODER
from schemas.errors import InputError


class ControlEndpoints:
    __slots__ = ("_faults", "_record")

    def __init__(self, record: SimulatorRecord, faults: Faults) -> None:
        self._record = record
        self._faults = faults

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_simulator/stats", self.stats)
        app.router.add_get("/_simulator/messages", self.messages)
        app.router.add_post("/_simulator/reset", self.reset)
        app.router.add_get("/_simulator/faults", self.faults)
        app.router.add_put("/_simulator/faults", self.change_faults)

    async def stats(self, request: web.Request) -> web.Response:
        stats = msgspec.structs.asdict(self._record.stats())
        return _json(200, ENCODER.encode({**stats, "faults": self._faults.view()}))

    async def messages(self, request: web.Request) -> web.Response:
        return _json(200, ENCODER.encode(self._record.messages))

    async def reset(self, request: web.Request) -> web.Response:
        self._record.clear()
        return await self.stats(request)

    async def faults(self, request: web.Request) -> web.Response:
        return _json(200, ENCODER.encode(self._faults.view()))

    async def change_faults(self, request: web.Request) -> web.Response:
        """`{"e403_rate": R, "latency_ms": N, "slow_reply_rate": R, "slow_reply_ms": N, "seed": S}`,
        any subset; answers with the faults in force."""
        try:
            await self._faults.apply(UPDATE_DECODER.decode(await request.read()))
        except (msgspec.DecodeError, msgspec.ValidationError, InputError) as error:
            return _json(400, ENCODER.encode({"code": "BAD_REQUEST", "message": str(error)}))
        return await self.faults(request)


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
