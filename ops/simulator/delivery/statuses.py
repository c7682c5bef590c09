"""Kaleyra's statuses and status traces the simulator reports (delivery-reports.md)."""

from __future__ import annotations

DELIVERED = "Delivered"
UNDELIVERED = "Undelivered"
FAILED = "Failed"
SENT = "Sent"  # the intermediate status: handed to the operator, no final word yet

SENT_TRACE = "SENT"  # not documented: Kaleyra names no trace for Sent

# A final status_trace and its status; the mix in `ReportsConfig.outcomes` is keyed by these.
TRACE_STATUS: dict[str, str] = {
    "DELIVRD": DELIVERED,
    "ABSENT-SUB": UNDELIVERED,
    "MOB-OFF": UNDELIVERED,
    "HANDSET-BUSY": UNDELIVERED,
    "HANDSET-ERR": UNDELIVERED,
    "NET-ERR": UNDELIVERED,
    "EXPIRED": UNDELIVERED,
    "OPT-OUT": UNDELIVERED,
    "CON-DND": UNDELIVERED,
    "DND-NUMB": UNDELIVERED,
    "NOT-OPTIN": UNDELIVERED,
    "INVALID-SUB": UNDELIVERED,
    "INV-NUMBER": UNDELIVERED,
    "BARRED": UNDELIVERED,
    "REJECTED": UNDELIVERED,
    "FAILED": FAILED,
}

# The `description` variable of a report's template.
DESCRIPTIONS: dict[str, str] = {
    SENT_TRACE: "Sent to the operator",
    "DELIVRD": "Delivered to the handset",
    "ABSENT-SUB": "Absent subscriber",
    "MOB-OFF": "Mobile switched off",
    "HANDSET-BUSY": "Handset busy",
    "HANDSET-ERR": "Handset error",
    "NET-ERR": "Network error",
    "EXPIRED": "Validity expired",
    "OPT-OUT": "Recipient opted out",
    "CON-DND": "Consent withdrawn (DND)",
    "DND-NUMB": "Number on the DND registry",
    "NOT-OPTIN": "Recipient not opted in",
    "INVALID-SUB": "Invalid subscriber",
    "INV-NUMBER": "Invalid number",
    "BARRED": "Subscriber barred",
    "REJECTED": "Rejected by the operator",
    "FAILED": "Failed",
}

# The status query's `status_details`: Kaleyra's one example answers DELIVERED for a delivered
# message; for the others the simulator answers the trace.
STATUS_DETAILS_DELIVERED = "DELIVERED"

DEFAULT_OUTCOMES: dict[str, float] = {
    "DELIVRD": 0.85,
    "ABSENT-SUB": 0.03,
    "MOB-OFF": 0.03,
    "HANDSET-BUSY": 0.01,
    "NET-ERR": 0.01,
    "EXPIRED": 0.02,
    "OPT-OUT": 0.005,
    "CON-DND": 0.005,
    "DND-NUMB": 0.005,
    "NOT-OPTIN": 0.005,
    "INVALID-SUB": 0.02,
    "FAILED": 0.01,
}


def status_details(status: str, trace: str) -> str:
    return STATUS_DETAILS_DELIVERED if status == DELIVERED else trace
