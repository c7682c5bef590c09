"""A real aiohttp server that stands in for Kaleyra's `POST /v1/<SID>/sms/json`, its delivery reports
and its status query.

For demos, staging and load tests (`campaign simulate`), and as the gateway in our own tests.
"""

from ops.simulator.app import FAULTS_KEY, RECORD_KEY, REPORTS_KEY, create_app
from ops.simulator.config import SimulatorConfig
from ops.simulator.delivery import DeliveryReports, ReportsConfig
from ops.simulator.record import AcceptedMessage, RecordStats, SimulatorRecord
from ops.simulator.runner import RunningSimulator, serve, start_in_thread

__all__ = [
    "FAULTS_KEY",
    "RECORD_KEY",
    "REPORTS_KEY",
    "AcceptedMessage",
    "DeliveryReports",
    "RecordStats",
    "ReportsConfig",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorRecord",
    "create_app",
    "serve",
    "start_in_thread",
]
