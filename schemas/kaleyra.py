"""The wire shapes of Kaleyra's `POST /v1/<SID>/sms/json` (see sms-json-xml.md).

Requests omit unset fields (`omit_defaults`), so a payload carries only what a
campaign sets. Replies are decoded leniently: unknown fields are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec

MAX_NODES_PER_REQUEST = 1000
MAX_BODY_CHARS = 4000
# Flash SMS go through `POST /v1/<SID>/sms` (flash-sms.md), at most 100 numbers a call (E405).
MAX_FLASH_NUMBERS = 100

UnicodeFlag = Literal["auto", "0", "1"]
Body = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)]


class SmsNode(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """One element of the `sms` array; its fields override the top-level ones."""

    to: str
    from_: str | None = msgspec.field(default=None, name="from")
    body: Body | None = None
    template_id: str | None = None
    entity_id: str | None = None
    unicode: UnicodeFlag | None = None
    callback_profile_id: str | None = None


class SmsJsonRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The request body. `sms` holds 1 to 1000 nodes (exactly one for type OTP)."""

    sms: Annotated[list[SmsNode], msgspec.Meta(min_length=1, max_length=MAX_NODES_PER_REQUEST)]
    channel: Literal["SMS"] | None = None
    type: str | None = None
    source: str | None = None
    prefix: str | None = None
    time: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    body: Body | None = None
    template_id: str | None = None
    entity_id: str | None = None
    unicode: UnicodeFlag | None = None
    callback_profile_id: str | None = None


class FlashSmsRequest(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """The body of `POST /v1/<SID>/sms` with `flash=1`: one body for every number of `to`
    (comma-separated, at most 100)."""

    to: str
    sender: str
    type: str
    body: str
    flash: Literal[1]  # no default: omit_defaults would leave it out
    time: str | None = None
    unicode: UnicodeFlag | None = None
    template_id: str | None = None
    entity_id: str | None = None
    callback_profile_id: str | None = None


class SubmittedSms(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One accepted message. Kaleyra spells the number's key `recepient`; `recipient` is accepted too.
    The node's echo of the body, sender and template is skipped, not decoded: a third of the reply's
    decoding, a thousand times per chunk."""

    message_id: str
    recepient: str | None = None
    recipient: str | None = None

    @property
    def number(self) -> str:
        return self.recepient or self.recipient or ""


def numbers_of(accepted: Sequence[SubmittedSms]) -> list[str]:
    """`sms.number` of each: a chunk's thousand calls of a property cost more than reading the fields."""
    return [sms.recepient or sms.recipient or "" for sms in accepted]


class SmsJsonResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The success reply."""

    sms: list[SubmittedSms]
    id: str | None = None
    body: str | None = None
    createdDateTime: str | None = None
    source: str | None = None
    type: str | None = None


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    """The object inside `{"error": {...}}` (E7xx validation errors)."""

    code: str
    type: str | None = None
    parameter: str | None = None
    message: str | None = None
    reference: str | None = None


class NestedErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`{"error": {"code": "E700", "type": ..., "parameter": ..., "message": ..., "reference": ...}}`."""

    error: ErrorDetail


class FlatErrorResponse(msgspec.Struct, frozen=True, kw_only=True):
    """`{"code": "E402", "message": ..., "error": {"<field>": "<reason>"}}`."""

    code: str
    message: str | None = None
    error: dict[str, str] | None = None


class GatewayReply(msgspec.Struct, frozen=True, kw_only=True):
    """Any reply, decoded once: success (`sms` from /sms/json, `data` from /sms), either error shape,
    or neither.

    `error` stays raw because it is an object in one error shape and a map of field
    reasons in the other; `worker.gateway.replies` tells them apart.
    """

    sms: list[SubmittedSms] | None = None
    data: list[SubmittedSms] | None = None
    code: str | None = None
    message: str | None = None
    error: msgspec.Raw = msgspec.Raw()  # empty when absent; `{}` in a flash success


class QueriedStatus(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One message in the status query's answer: `{"campaign_id": "<message id>", "status": "Delivered",
    "status_details": "DELIVERED"}` (Kaleyra names the message id `campaign_id` there)."""

    campaign_id: str
    status: str = ""
    status_details: str = ""


class StatusReply(msgspec.Struct, frozen=True, kw_only=True):
    """The status query's answer (`GET /v1/<SID>/sms/status?message_ids=...`), or an error in either
    shape (`error` raw, as in `GatewayReply`). An id Kaleyra does not know is left out of `data`."""

    data: list[msgspec.Raw] | None = None  # each a QueriedStatus, read on its own: one odd item spoils none
    code: str | None = None
    message: str | None = None
    error: msgspec.Raw = msgspec.Raw()
