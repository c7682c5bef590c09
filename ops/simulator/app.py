"""The aiohttp application: Kaleyra's send and status endpoints plus the simulator's control endpoints."""

from __future__ import annotations

from aiohttp import web

from ops.simulator.config import SimulatorConfig
from ops.simulator.control import ControlEndpoints
from ops.simulator.delivery import DeliveryReports
from ops.simulator.faults import Faults
from ops.simulator.flash_endpoint import FlashEndpoint
from ops.simulator.record import SimulatorRecord
from ops.simulator.sms_endpoint import SmsEndpoint
from ops.simulator.status_endpoint import StatusEndpoint

RECORD_KEY = web.AppKey("simulator_record", SimulatorRecord)
FAULTS_KEY = web.AppKey("simulator_faults", Faults)
REPORTS_KEY = web.AppKey("simulator_reports", DeliveryReports)

# aiohttp's default limit is 1 MiB; 1000 nodes of 4000 \uXXXX-escaped characters is about 24 MiB.
MAX_REQUEST_BYTES = 32 * 1024 * 1024


def create_app(config: SimulatorConfig) -> web.Application:
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    record = SimulatorRecord()
    faults = Faults(
        config.e403_rate,
        config.latency_ms,
        config.seed,
        slow_reply_rate=config.slow_reply_rate,
        slow_reply_ms=config.slow_reply_ms,
    )
    reports = DeliveryReports(config.reports)
    app[RECORD_KEY] = record
    app[FAULTS_KEY] = faults
    app[REPORTS_KEY] = reports
    key, sid = config.api_key, config.sid
    app.router.add_post("/v1/{sid}/sms/json", SmsEndpoint(key, sid, record, faults, reports).handle)
    app.router.add_post("/v1/{sid}/sms", FlashEndpoint(key, sid, record, faults, reports).handle)
    app.router.add_get("/v1/{sid}/sms/status", StatusEndpoint(key, sid, record, faults, reports).handle)
    ControlEndpoints(record, faults, reports).add_routes(app)
    app.on_cleanup.append(_close_reports)
    return app


async def _close_reports(app: web.Application) -> None:
    await app[REPORTS_KEY].close()
