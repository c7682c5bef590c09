"""The aiohttp application: Kaleyra's send endpoint plus the simulator's control endpoints."""

from __future__ import annotations

from aiohttp import web

from ops.simulator.config import SimulatorConfig
from ops.simulator.control import ControlEndpoints
from ops.simulator.faults import Faults
from ops.simulator.flash_endpoint import FlashEndpoint
from ops.simulator.record import SimulatorRecord
from ops.simulator.sms_endpoint import SmsEndpoint

RECORD_KEY = web.AppKey("simulator_record", SimulatorRecord)
FAULTS_KEY = web.AppKey("simulator_faults", Faults)

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
    app[RECORD_KEY] = record
    app[FAULTS_KEY] = faults
    app.router.add_post("/v1/{sid}/sms/json", SmsEndpoint(config.api_key, config.sid, record, faults).handle)
    app.router.add_post("/v1/{sid}/sms", FlashEndpoint(config.api_key, config.sid, record, faults).handle)
    ControlEndpoints(record, faults).add_routes(app)
    return app
