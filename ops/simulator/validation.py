"""Kaleyra's documented checks on a send request, in order: the first failure is the answer."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ops.simulator.incoming import (
    IncomingNode,
    IncomingRequest,
    effective_body,
    effective_sender,
    effective_unicode,
)
from ops.simulator.replies import E402_MESSAGE, Rejection, flat, nested
from schemas.error_codes import CATALOGUE
from schemas.kaleyra import MAX_BODY_CHARS, MAX_NODES_PER_REQUEST

MAX_TXN_NUMBERS = 100  # E405
MESSAGE_TYPES = frozenset({"MKT", "DEFAULT", "TXND", "TXN", "OTP"})
UNICODE_FLAGS = frozenset({"auto", "0", "1"})
SCHEDULE_MIN_AHEAD = timedelta(minutes=15)
SCHEDULE_MAX_AHEAD = timedelta(days=92)  # "3 months"

_NUMBER = re.compile(r"\+?(\d{7,15})", re.ASCII)  # without ASCII, \d would take "٣" too
_SCHEDULE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:Z|[+-]\d\d:\d\d)", re.ASCII)


def recipient_digits(to: str | int | None) -> str | None:
    """The number without its `+` when it is one (7 to 15 digits), else None."""
    if to is None:
        return None
    match = _NUMBER.fullmatch(to if isinstance(to, str) else str(to))
    return match.group(1) if match else None


def validate(request: IncomingRequest, reference: str, now: datetime) -> Rejection | None:
    """(HTTP status, error reply) for the first check that fails, or None when the request is good."""
    nodes = request.sms
    if request.channel is not None and request.channel.upper() != "SMS":
        return 400, nested("E700", "channel", f"channel must be SMS, got {request.channel!r}", reference)
    if not nodes:
        return 400, nested("E703", "sms", CATALOGUE["E703"].description, reference)
    if len(nodes) > MAX_NODES_PER_REQUEST:
        message = f"sms can hold at most {MAX_NODES_PER_REQUEST} objects, got {len(nodes)}"
        return 400, nested("E700", "sms", message, reference)
    if request.type and request.type not in MESSAGE_TYPES:
        reason = f"{request.type!r} is not one of {', '.join(sorted(MESSAGE_TYPES))}"
        return 400, flat("E615", CATALOGUE["E615"].description, "type", reason)
    if request.type == "OTP" and len(nodes) > 1:
        return 400, nested("E708", "sms", CATALOGUE["E708"].description, reference)
    if request.type == "TXN" and len(nodes) > MAX_TXN_NUMBERS:
        return 400, flat("E405", CATALOGUE["E405"].description, "to", f"{len(nodes)} numbers")
    for index, node in enumerate(nodes):
        if rejection := _check_node(index, node, request):
            return rejection
    if request.time is not None and not schedulable(request.time, now):
        return 400, flat("E402", E402_MESSAGE, "time", E402_MESSAGE)
    # Invalid numbers are dropped from the reply, not refused, unless none is left.
    if not any(recipient_digits(node.to) for node in nodes):
        return 400, flat("E406", CATALOGUE["E406"].description, "to", "no number of 7 to 15 digits")
    return None


def _check_node(index: int, node: IncomingNode, request: IncomingRequest) -> Rejection | None:
    body = effective_body(node, request)
    if not body:
        return _node_error("E601", index, "body", "no body in this node nor at the top level")
    if len(body) > MAX_BODY_CHARS:
        return _node_error("E401", index, "body", f"{len(body)} characters, at most {MAX_BODY_CHARS}")
    unicode = effective_unicode(node, request)
    if unicode not in UNICODE_FLAGS:
        return _node_error("E604", index, "unicode", f"{unicode!r} is not auto, 0 or 1")
    if not effective_sender(node, request):
        return _node_error("E602", index, "from", "no sender in this node nor at the top level")
    if node.to is None or node.to == "":
        return _node_error("E600", index, "to", "missing or empty")
    return None


def _node_error(code: str, index: int, field: str, reason: str) -> Rejection:
    return 400, flat(code, CATALOGUE[code].description, f"sms[{index}].{field}", reason)


def schedulable(text: str, now: datetime) -> bool:
    """`YYYY-MM-DDThh:mm:ss` with an offset (or Z), 15 minutes to 3 months after `now`."""
    if not _SCHEDULE_TIME.fullmatch(text):
        return False
    try:
        at = datetime.fromisoformat(text)
    except ValueError:  # well-formed but impossible, e.g. month 13
        return False
    return now + SCHEDULE_MIN_AHEAD <= at <= now + SCHEDULE_MAX_AHEAD
