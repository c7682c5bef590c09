"""What the simulator answers: Kaleyra's success shape and its two error shapes."""

from __future__ import annotations

import re

import msgspec

from schemas.kaleyra import ErrorDetail, FlatErrorResponse, NestedErrorResponse

ENCODER = msgspec.json.Encoder()

E403_MESSAGE = "Some thing went wrong at our end please try again after some time"  # Kaleyra's wording
E402_MESSAGE = "Message can be scheduled for after 15 minutes from current time and before 3 months from now."
INVALID_JSON_MESSAGE = "Please enter a valid JSON object"

ErrorReply = NestedErrorResponse | FlatErrorResponse
Rejection = tuple[int, ErrorReply]  # HTTP status, body


class ReplySms(msgspec.Struct, frozen=True, gc=False):
    """One accepted node, keys as documented, `recepient` misspelling included."""

    body: str
    from_: str = msgspec.field(name="from")
    message_id: str
    recepient: str
    template_id: str | None


class SuccessReply(msgspec.Struct, frozen=True):
    body: str | None
    createdDateTime: str  # Kaleyra's spelling
    id: str
    sms: list[ReplySms]
    source: str
    type: str


def nested(code: str, parameter: str, message: str, reference: str) -> NestedErrorResponse:
    """E7xx: `{"error": {"code", "type", "parameter", "message", "reference"}}`."""
    detail = ErrorDetail(
        code=code, type="VALIDATION_ERROR", parameter=parameter, message=message, reference=reference
    )
    return NestedErrorResponse(error=detail)


def flat(code: str, message: str, field: str, reason: str) -> FlatErrorResponse:
    """E4xx/E6xx: `{"code", "message", "error": {"<field>": "<reason>"}}` (schedule-sms.md)."""
    return FlatErrorResponse(code=code, message=message, error={field: reason})


def code_of(reply: ErrorReply) -> str:
    return reply.error.code if isinstance(reply, NestedErrorResponse) else reply.code


def _notice(code: str, message: str) -> bytes:
    # Encoded once: these never vary, and a dict leaves out the `error` key FlatErrorResponse would add.
    return ENCODER.encode({"code": code, "message": message})


UNAUTHORIZED = _notice("UNAUTHORIZED", "invalid or missing api-key")
NOT_FOUND = _notice("NOT_FOUND", "unknown SID")
E403_FLAT = _notice("E403", E403_MESSAGE)


def e403(turn: int, reference: str) -> tuple[int, bytes]:
    """The injected E403, in one of three forms in turn, so that clients learn to classify by code
    whatever the HTTP status and the shape: flat/500, nested/400, flat/200."""
    form = turn % 3
    if form == 0:
        return 500, E403_FLAT
    if form == 1:
        detail = ErrorDetail(code="E403", type="SERVER_ERROR", message=E403_MESSAGE, reference=reference)
        return 400, ENCODER.encode(NestedErrorResponse(error=detail))
    return 200, E403_FLAT


_ERROR_PATH = re.compile(r"at `\$\.(\w+)")


def invalid_json(error: msgspec.MsgspecError, reference: str) -> NestedErrorResponse:
    """E700 for a body that is not JSON, not an object, or has a field of the wrong type."""
    if match := _ERROR_PATH.search(str(error)):  # a field of the wrong type: say which and why
        return nested("E700", match.group(1), f"{INVALID_JSON_MESSAGE}: {error}", reference)
    return nested("E700", "sms", INVALID_JSON_MESSAGE, reference)
