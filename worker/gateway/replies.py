"""Turn a reply into accepted messages or a classified `GatewayError`.

Kaleyra's HTTP statuses are not reliable (an E403 may come with 200, 400 or 500), so
the error code decides; the status is the fallback when no documented code is found.
"""

from __future__ import annotations

from typing import TypeVar

import msgspec

from schemas.error_codes import TRANSIENT_HTTP_STATUSES, UNAVAILABLE_HTTP_STATUSES, CodeKind, kind_of
from schemas.errors import (
    AccountFault,
    AmbiguousGatewayError,
    GatewayError,
    GatewayUnreachable,
    PermanentGatewayError,
    TransientGatewayError,
)
from schemas.kaleyra import ErrorDetail, GatewayReply, QueriedStatus, StatusReply, SubmittedSms

_reply_decoder = msgspec.json.Decoder(GatewayReply)
_status_decoder = msgspec.json.Decoder(StatusReply)
_queried_decoder = msgspec.json.Decoder(QueriedStatus)
_detail_decoder = msgspec.json.Decoder(ErrorDetail)
_ERROR_BY_KIND: dict[CodeKind, type[GatewayError]] = {
    CodeKind.TRANSIENT: TransientGatewayError,
    CodeKind.PERMANENT: PermanentGatewayError,
}


# Kaleyra documents no code for a refused API key: these statuses mean it, whatever the body says.
ACCOUNT_REFUSED_STATUSES = frozenset({401, 403})
HTTP_NOT_FOUND = 404


def parse_reply(status: int, body: bytes) -> list[SubmittedSms]:
    """The accepted messages of a success reply; raise the classified error otherwise."""
    reply, code, message = _read(status, body, _reply_decoder)
    if reply is not None and 200 <= status < 300:
        accepted = reply.sms if reply.sms is not None else reply.data
        if accepted is not None:
            return accepted
    # Never echo an unreadable reply: it may hold recipients' numbers.
    raise _by_status(status, code, message or f"unreadable reply of {len(body)} bytes")


def parse_status_reply(status: int, body: bytes) -> list[QueriedStatus]:
    """The messages of the status query's answer (those Kaleyra knows); raise the classified error
    otherwise, as for a send."""
    reply, code, message = _read(status, body, _status_decoder)
    if reply is not None and 200 <= status < 300 and reply.data is not None:
        return [known for item in reply.data if (known := _queried(item)) is not None]
    raise _by_status(status, code, message or f"unreadable reply of {len(body)} bytes")


_Reply = TypeVar("_Reply", GatewayReply, StatusReply)


def _read(
    status: int, body: bytes, decoder: msgspec.json.Decoder[_Reply]
) -> tuple[_Reply | None, str | None, str | None]:
    """A reply decoded (None when it does not decode) with its error code and message; raise at once
    for a refused API key or a documented code."""
    if status in ACCOUNT_REFUSED_STATUSES:
        # Never echo the body: it may hold recipients' numbers.
        raise AccountFault("UNAUTHORIZED", f"the gateway refused the API key (HTTP {status})", status=status)
    try:
        reply = decoder.decode(body)
    except msgspec.DecodeError:
        reply = None
    code, message = _raise_documented(status, reply)
    return reply, code, message


def _queried(item: msgspec.Raw) -> QueriedStatus | None:
    """One message of the status query's answer; None for an item that is not one (left out, as an id
    Kaleyra does not know is: asked again later)."""
    try:
        return _queried_decoder.decode(item)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None


def _raise_documented(status: int, reply: GatewayReply | StatusReply | None) -> tuple[str | None, str | None]:
    """Raise the error a documented code (or a 404 without one) means; else the reply's code and message."""
    code, message = _error_code(reply)
    if code is not None:
        kind = kind_of(code)
        if kind in _ERROR_BY_KIND:
            raise _ERROR_BY_KIND[kind](code, message or "", status=status)
    if status == HTTP_NOT_FOUND:  # no documented code: the URL or the SID is wrong, for every request
        raise AccountFault(
            "NOT_FOUND",
            "the gateway has no such endpoint or account (HTTP 404): check KALEYRA_BASE_URL, "
            "KALEYRA_REGION and KALEYRA_SID",
            status=status,
        )
    return code, message


def _error_code(reply: GatewayReply | StatusReply | None) -> tuple[str | None, str | None]:
    """The code of either error shape: flat `{"code": ...}` or nested `{"error": {"code": ...}}`."""
    if reply is None:
        return None, None
    if reply.code:
        return reply.code.upper(), reply.message
    if len(reply.error) and bytes(reply.error) != b"null":
        try:
            detail = _detail_decoder.decode(reply.error)
        except msgspec.DecodeError:
            return None, None
        return detail.code.upper(), detail.message
    return None, None


def _by_status(status: int, code: str | None, message: str) -> GatewayError:
    label = code or f"HTTP{status}"
    if status in UNAVAILABLE_HTTP_STATUSES:
        return GatewayUnreachable(label, message, status=status)
    if status in TRANSIENT_HTTP_STATUSES:
        return TransientGatewayError(label, message, status=status)
    if 400 <= status < 500:
        return PermanentGatewayError(label, message, status=status)
    # A 2xx we cannot read, a 504 or another 5xx: the request may have been processed.
    return AmbiguousGatewayError(label, message, status=status)
