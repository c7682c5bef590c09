"""The simulator's delivery reports: decide each accepted message's fate, send its reports, and
answer what its status is now."""

from __future__ import annotations

import asyncio
import time

from ops.simulator.delivery.config import ReportsConfig
from ops.simulator.delivery.plan import Planner
from ops.simulator.delivery.record import ReportsRecord
from ops.simulator.delivery.sender import ReportSender
from ops.simulator.delivery.statuses import SENT, SENT_TRACE, status_details
from ops.simulator.record import AcceptedMessage


class DeliveryReports:
    """Off (`config` None) by default: then accepting a message costs one attribute test.

    Written only from the server's event loop (the endpoints and the control endpoints).
    """

    __slots__ = ("_planner", "_sender", "config", "record")

    def __init__(self, config: ReportsConfig | None) -> None:
        self.record = ReportsRecord()
        self._sender = ReportSender(self.record)
        self.config: ReportsConfig | None = None
        self._planner: Planner | None = None
        self.configure(config)

    def configure(self, config: ReportsConfig | None) -> None:
        """For messages accepted from now on; reports already planned go as they were planned.
        A new config starts its own random sequence (from its seed)."""
        self.config = config
        self._planner = Planner(config) if config is not None else None

    def accept(self, messages: list[AcceptedMessage]) -> None:
        planner, config = self._planner, self.config
        if planner is None or config is None:
            return
        accepted_at, loop_now = time.time(), asyncio.get_running_loop().time()
        decided = self.record.messages
        for message in messages:
            record, delays = planner.plan(message, accepted_at)
            decided[message.message_id] = record
            if delays:
                self._sender.send(record, delays, loop_now, config)

    def current(self, message_id: str, now: float) -> tuple[str, str] | None:
        """(status, status_details) at UNIX time `now`, or None for a message no plan knows."""
        message = self.record.messages.get(message_id)
        if message is None:
            return None
        if now < message.final_at:
            return SENT, SENT_TRACE
        return message.status, status_details(message.status, message.status_trace)

    def clear(self) -> None:
        """Forgets every decision and every report not yet sent (the config stays)."""
        self._sender.clear()
        self.record.clear()

    async def close(self) -> None:
        await self._sender.close()
