"""Delivery reports: what Kaleyra says became of a message it accepted, and what that means for us.

A report names Kaleyra's message id (`<request id>:<node position>`), a status (`Sent`, `Delivered`,
`Undelivered`, `Failed`, or an SMPP-style word) and a finer `status_trace`. Statuses are ranked by
how final they are, so that reports arriving out of order, or twice, leave the most final one.
"""

from __future__ import annotations

import enum

import msgspec


class DeliveryStatus(enum.IntEnum):
    """A message's delivery, by how final it is: a report never moves a message to a lower rank.
    Stored as one byte a message, so the values are fixed."""

    NONE = 0  # no report yet
    SENT = 1  # handed to the operator; not final
    DELIVERED = 2
    UNDELIVERED = 3  # the operator could not deliver it (the trace says why)
    FAILED = 4  # Kaleyra did not send it on (NOT-SENT and the like)

    @property
    def final(self) -> bool:
        return self >= DeliveryStatus.DELIVERED

    @property
    def word(self) -> str:
        """As status, report and the HTTP API show it."""
        return self.name.lower()


# Kaleyra's statuses (any case) and SMPP's words, to our status. Unknown words read as SENT: not final,
# so that a later known report, or the status query, settles the message.
_STATUSES = {
    "sent": DeliveryStatus.SENT, "queued": DeliveryStatus.SENT, "submitted": DeliveryStatus.SENT,
    "accepted": DeliveryStatus.SENT, "enroute": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED, "delivrd": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.UNDELIVERED, "undeliv": DeliveryStatus.UNDELIVERED,
    "expired": DeliveryStatus.UNDELIVERED, "rejected": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED, "not-sent": DeliveryStatus.FAILED, "notsent": DeliveryStatus.FAILED,
    "submit-fail": DeliveryStatus.FAILED, "max-limit": DeliveryStatus.FAILED,
    "num-limit": DeliveryStatus.FAILED,
}  # fmt: skip


def delivery_status(word: str) -> DeliveryStatus:
    """Our status for a word Kaleyra reports (`Delivered`, `UnDelivered`, `DELIVRD`, ...)."""
    return _STATUSES.get(word.strip().lower(), DeliveryStatus.SENT)


# What a trace means for the number: never send to it again (it joins the suppression list), or a
# temporary condition worth a later resend (`campaign resend --undelivered`).
OPTED_OUT_TRACES = frozenset({"OPT-OUT", "CON-DND", "DND-NUMB", "NOT-OPTIN"})
TEMPORARY_TRACES = frozenset({"ABSENT-SUB", "MOB-OFF", "HANDSET-BUSY", "NET-ERR", "EXPIRED"})
# Traces stored as a byte (its position here, from 1; 0 for none): Kaleyra's documented codes. Any
# other trace is stored as OTHER_TRACE and shown as "OTHER".
KNOWN_TRACES = (
    "DELIVRD", "DELIVERED", "SENT",
    "ABSENT-SUB", "MOB-OFF", "HANDSET-BUSY", "NET-ERR", "EXPIRED",
    "OPT-OUT", "CON-DND", "DND-NUMB", "NOT-OPTIN",
    "INV-NUMBER", "INVALID-SUB", "KLR-INV-NUMBER", "SERVER-ERR", "SNDRID-NOT-ALLOTED", "HANDSET-ERR",
    "BARRED", "MEM-EXEC", "FAILED", "SERIES-BLK", "REJECTED", "UNDELIV",
    "NOT-ALLOWED", "NO-CREDITS", "SERIES-BLOCK", "SPAM", "BLACKLIST", "INV-MOB-PATTRN",
    "TEMPLATE-NOT-FOUND", "INV-TEMPLATE-MATCH", "SENDER-ID-NOT-FOUND", "OUTPUT-REJ",
    "REJECTED-MULTIPART", "SUBMIT-FAIL", "MAX-LIMIT", "NUM-LIMIT", "NOT-SENT",
)  # fmt: skip
OTHER_TRACE = 255
_TRACE_CODES = {trace: code for code, trace in enumerate(KNOWN_TRACES, start=1)}
# Kaleyra's reports say DELIVRD, its status query DELIVERED: one trace, so that a campaign's traces and
# report do not split its delivered messages by how they were learnt. (Bytes already stored as DELIVERED
# still read as it.)
_TRACE_CODES["DELIVERED"] = _TRACE_CODES["DELIVRD"]


def trace_code(trace: str) -> int:
    """The byte a trace is stored as: 0 for none, OTHER_TRACE for one not in KNOWN_TRACES."""
    trace = trace.strip().upper()
    return 0 if not trace else _TRACE_CODES.get(trace, OTHER_TRACE)


def trace_of(code: int) -> str:
    """The trace a stored byte stands for ("" for none)."""
    if code == 0:
        return ""
    return KNOWN_TRACES[code - 1] if code <= len(KNOWN_TRACES) else "OTHER"


class DeliveryReport(msgspec.Struct, frozen=True, gc=False):
    """One report as the receiver read it, whatever its shape (query, form, JSON, the field map)."""

    message_id: str  # Kaleyra's: `<request id>:<position>`
    status: DeliveryStatus
    trace: str = ""
    at: float = 0.0  # Unix seconds: the report's timestamp, else when it was received
    # False when `at` is when we learnt it (the status query's answer), not when it happened: such a
    # report is not counted in the campaign's times to delivery.
    timed: bool = True
