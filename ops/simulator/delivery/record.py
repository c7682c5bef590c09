"""What the simulator decided for each accepted message, and what became of each report it sent."""

from __future__ import annotations

from collections import Counter
from typing import Literal

import msgspec

ReportKind = Literal["sent", "final", "duplicate"]  # "sent": the intermediate Sent report
ReportState = Literal["pending", "acknowledged", "gave_up"]


class Report(msgspec.Struct, kw_only=True):
    """One report (one status change) and its delivery attempts; mutable as they happen."""

    kind: ReportKind
    status: str
    status_trace: str
    timestamp: str  # when the status took effect, as the report says it
    state: ReportState = "pending"
    attempts: int = 0
    last_error: str | None = None  # "HTTP 500", or the connection error's name


class MessageReports(msgspec.Struct, kw_only=True):
    """One accepted message: its final status and how it is reported.

    `reports` lists the reports in the order they are sent, one after the other (the next waits
    for the previous one's acknowledgement or last attempt): an out-of-order message has its
    final report first. A dropped message has no final report (nor duplicate) in the list.
    """

    message_id: str
    recipient: str
    sender: str
    status: str  # the final status: Delivered, Undelivered or Failed
    status_trace: str
    final_at: float  # UNIX time the final status takes effect (the status query answers it from then)
    sent_report: bool = False
    out_of_order: bool = False
    duplicated: bool = False
    dropped: bool = False
    reports: list[Report] = []


class ReportsSummary(msgspec.Struct, frozen=True, kw_only=True):
    messages: int
    by_status: dict[str, int]
    by_trace: dict[str, int]
    sent_reports: int  # messages with an intermediate Sent report
    out_of_order: int
    duplicated: int
    dropped: int
    reports: int  # reports to send, all kinds
    acknowledged: int  # reports answered 2xx
    gave_up: int  # reports never answered 2xx in max_attempts
    pending: int  # reports not yet acknowledged nor given up
    attempts: int  # requests made, retries included
    failed_attempts: int  # requests answered other than 2xx, or not answered
    status_queries: int


class ReportsRecord:
    """Written only from the server's event loop; read through `GET /_simulator/reports`."""

    __slots__ = ("failed_attempts", "messages", "status_queries")

    def __init__(self) -> None:
        self.messages: dict[str, MessageReports] = {}
        self.failed_attempts = 0
        self.status_queries = 0

    def summary(self) -> ReportsSummary:
        messages = self.messages.values()
        states: Counter[str] = Counter()
        attempts = 0
        for message in messages:
            for report in message.reports:
                states[report.state] += 1
                attempts += report.attempts
        return ReportsSummary(
            messages=len(self.messages),
            by_status=dict(Counter(message.status for message in messages)),
            by_trace=dict(Counter(message.status_trace for message in messages)),
            sent_reports=sum(message.sent_report for message in messages),
            out_of_order=sum(message.out_of_order for message in messages),
            duplicated=sum(message.duplicated for message in messages),
            dropped=sum(message.dropped for message in messages),
            reports=states.total(),
            acknowledged=states["acknowledged"],
            gave_up=states["gave_up"],
            pending=states["pending"],
            attempts=attempts,
            failed_attempts=self.failed_attempts,
            status_queries=self.status_queries,
        )

    def clear(self) -> None:
        self.messages.clear()
        self.failed_attempts = self.status_queries = 0
