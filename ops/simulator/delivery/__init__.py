"""Delivery reports from the simulator to a callback profile's URL, and the status query's answers."""

from ops.simulator.delivery.config import TOKEN_HEADER, ReportsConfig
from ops.simulator.delivery.record import MessageReports, Report, ReportsSummary
from ops.simulator.delivery.reports import DeliveryReports

__all__ = ["TOKEN_HEADER", "DeliveryReports", "MessageReports", "Report", "ReportsConfig", "ReportsSummary"]
