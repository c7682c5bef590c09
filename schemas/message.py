"""A single message, as an event-driven producer sends it: one recipient, queued on its lane, no campaign."""

from __future__ import annotations

import enum

import msgspec

from schemas.campaign import MessageType
from schemas.kaleyra import UnicodeFlag


class SingleMessage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """What the producer queued, checked and normalised: `to` is E.164, the body is final (no
    placeholders). Stored as the `m` field of its lane's stream entry."""

    to: str
    body: str
    sender: str
    type: MessageType
    unicode: UnicodeFlag | None = None  # None: the worker's default (CAMPAIGN_DEFAULT_UNICODE)
    template_id: str | None = None
    entity_id: str | None = None
    callback_profile_id: str | None = None
    reference: str | None = None  # the producer's own, returned with the message's status
    queued_at: float = 0.0  # Unix seconds
    # Where its end and then its final delivery report are POSTed (`schemas.callback`).
    callback_url: str | None = None


class MessageStatus(enum.StrEnum):
    """Where a single message stands: submitted, failed and unknown are where its sending ends, as a
    campaign's recipients' does; a submitted one is then delivered or undelivered once its final
    delivery report comes (shown, never stored in its hash)."""

    QUEUED = "queued"
    SENDING = "sending"  # a worker claimed it and may have POSTed it: if that worker dies, unknown
    SUBMITTED = "submitted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"  # the operator could not deliver it, or Kaleyra did not send it on


class MessageReceipt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What `send_message` answers (and an idempotent retry answers again)."""

    id: str
    status: MessageStatus = MessageStatus.QUEUED


class MessageState(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What `message(id)` answers: its status and, once the gateway answered, Kaleyra's message id or
    the error code."""

    id: str
    status: MessageStatus
    message_id: str | None = None
    code: str | None = None
    reference: str | None = None
    trace: str | None = None  # the final delivery report's status trace (DELIVRD, ABSENT-SUB ...)
    reported_at: float | None = None  # when the final delivery report says it happened (Unix seconds)
    callbacks: Callbacks | None = None  # with a callback url: how telling the producer went


class Callbacks(msgspec.Struct, frozen=True, kw_only=True):
    """The callbacks of a campaign or a single message: made (events to tell), sent (the receiver
    answered 2xx), failed (given up after the last attempt), pending (the rest: to attempt, or being
    attempted), attempts made in all, and the last attempt's time and the last failure's reason."""

    made: int
    sent: int
    failed: int
    pending: int
    attempts: int
    last_attempt_at: float | None = None
    last_error: str | None = None
