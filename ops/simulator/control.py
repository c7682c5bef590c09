"""`/_simulator/*`: read the record, clear it, and change faults, from tests in other processes."""

from __future__ import annotations

import msgspec
from aiohttp import web

from ops.simulator.delivery import DeliveryReports, ReportsConfig
from ops.simulator.delivery.config import CONFIG_DECODER
from ops.simulator.faults import UPDATE_DECODER, Faults
from ops.simulator.record import SimulatorRecord
from ops.simulator.replies import ENCODER
from schemas.errors import InputError


class ControlEndpoints:
    __slots__ = ("_faults", "_record", "_reports")

    def __init__(self, record: SimulatorRecord, faults: Faults, reports: DeliveryReports) -> None:
        self._record = record
        self._faults = faults
        self._reports = reports

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_simulator/stats", self.stats)
        app.router.add_get("/_simulator/messages", self.messages)
        app.router.add_post("/_simulator/reset", self.reset)
        app.router.add_get("/_simulator/faults", self.faults)
        app.router.add_put("/_simulator/faults", self.change_faults)
        app.router.add_get("/_simulator/reports", self.reports)
        app.router.add_get("/_simulator/reports/config", self.reports_config)
        app.router.add_put("/_simulator/reports/config", self.change_reports_config)

    async def stats(self, request: web.Request) -> web.Response:
        stats = msgspec.structs.asdict(self._record.stats())
        return _json(200, ENCODER.encode({**stats, "faults": self._faults.view()}))

    async def messages(self, request: web.Request) -> web.Response:
        return _json(200, ENCODER.encode(self._record.messages))

    async def reset(self, request: web.Request) -> web.Response:
        """Also forgets the delivery reports decided, and those not yet sent."""
        self._record.clear()
        self._reports.clear()
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

    async def reports(self, request: web.Request) -> web.Response:
        """`{"summary": {...}, "messages": [...]}`: what was decided for each message accepted while
        reports were configured, and what became of each report; `?summary=1` for the summary only."""
        record = self._reports.record
        summary = record.summary()
        if request.query.get("summary") in ("1", "true"):
            return _json(200, ENCODER.encode({"summary": summary}))
        return _json(200, ENCODER.encode({"summary": summary, "messages": list(record.messages.values())}))

    async def reports_config(self, request: web.Request) -> web.Response:
        return _json(200, ENCODER.encode(_view(self._reports.config)))

    async def change_reports_config(self, request: web.Request) -> web.Response:
        """A whole `ReportsConfig` (absent fields take their defaults), or `null` to decide nothing
        more; for messages accepted from now on. Answers with the config in force."""
        try:
            self._reports.configure(CONFIG_DECODER.decode(await request.read()))
        except (msgspec.DecodeError, msgspec.ValidationError, InputError) as error:
            return _json(400, ENCODER.encode({"code": "BAD_REQUEST", "message": str(error)}))
        return await self.reports_config(request)


def _view(config: ReportsConfig | None) -> ReportsConfig | None:
    """The config without its token's value (a shared secret)."""
    if config is None or config.token is None:
        return config
    return msgspec.structs.replace(config, token="***")


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")
