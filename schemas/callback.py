"""Callbacks to the producer: the events POSTed to a campaign's or a single message's `callback_url`, how
their body is signed, and how a receiver checks the signature.

A callback's body is `{"id": ..., "events": [...]}`: its id (the same on every attempt: a receiver drops
one it has seen; also in the header `X-Campaign-Callback-Id`) and one or more events of one owner (a
campaign, or a single message), JSON. It carries `X-Campaign-Signature: t=<unix seconds>,v1=<hex>`, the
HMAC-SHA256, keyed with `CAMPAIGN_CALLBACK_SECRET`, of `<t>.` followed by the body's bytes: the id is
signed with the events, and the time lets a receiver refuse a replayed old body.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from schemas.delivery import DeliveryStatus, trace_of
from schemas.errors import SpecError

SIGNATURE_HEADER = "X-Campaign-Signature"
CALLBACK_ID_HEADER = "X-Campaign-Callback-Id"
MAX_URL_CHARS = 2000
# A receiver refuses a signature older (or further ahead) than this: a replayed body.
SIGNATURE_TOLERANCE_S = 300


class MessageEvent(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, tag="message.status",
                   tag_field="event"):  # fmt: skip
    """A message's status changed to one where it ends: `submitted`, `failed` or `unknown` when its
    sending ended, then `delivered` or `undelivered` when its final delivery report came. A single
    message's event has its `id` (and `reference`); a campaign's message's has `campaign_id`. `at`: when
    it happened (Unix seconds; for a delivery, the time the report gives)."""

    status: str
    at: float
    id: str | None = None
    reference: str | None = None
    campaign_id: str | None = None
    message_id: str | None = None  # Kaleyra's
    code: str | None = None  # failed or unknown: why
    trace: str | None = None  # a delivery report's status trace: DELIVRD, ABSENT-SUB, OPT-OUT ...


class CampaignEvent(msgspec.Struct, frozen=True, kw_only=True, tag="campaign.status", tag_field="event"):
    """A campaign's sending ended: its state (`completed`, `failed` or `cancelled`) and counts, as
    `campaign status` gives them then."""

    campaign_id: str
    state: str
    at: float
    total: int
    submitted: int
    failed: int
    unknown: int
    cancelled: int


CallbackEvent = MessageEvent | CampaignEvent


class CallbackBody(msgspec.Struct, frozen=True):
    id: str
    events: list[CallbackEvent]


_event_encoder = msgspec.json.Encoder()
_body_encoder = msgspec.json.Encoder()
_stored_event = msgspec.json.Decoder(list[dict[str, Any]])


def encode_event(event: CallbackEvent) -> bytes:
    return _event_encoder.encode(event)


def render_body(callback_id: str, stored_events: bytes) -> bytes:
    """The body POSTed for callback `callback_id`'s events as stored: the events the data model wrote
    for delivery reports name their trace by its stored code (`trace_code`), and a delivery status by
    its number; they are given by name here."""
    events = []
    for event in _stored_event.decode(stored_events):
        code = event.pop("trace_code", None)
        if code:
            event["trace"] = trace_of(int(code))
        status = event.get("status")
        if isinstance(status, int):
            event["status"] = _delivery_word(DeliveryStatus(status))
        events.append(msgspec.convert(event, CallbackEvent))
    return _body_encoder.encode(CallbackBody(callback_id, events))


def _delivery_word(status: DeliveryStatus) -> str:
    """As a message's status says it: Kaleyra not sending a message on is its being undelivered."""
    return "delivered" if status is DeliveryStatus.DELIVERED else "undelivered"


def signature(secret: str, body: bytes, *, at: int | None = None) -> str:
    """The `X-Campaign-Signature` header's value for `body`, signed now (or `at`)."""
    at = int(time.time()) if at is None else at
    return f"t={at},v1={_digest(secret, at, body)}"


def verify_signature(secret: str, header: str, body: bytes, *, now: float | None = None,
                     tolerance_s: float = SIGNATURE_TOLERANCE_S) -> bool:  # fmt: skip
    """Whether `header` (the `X-Campaign-Signature` a callback came with) signs `body` with `secret`,
    and was made within `tolerance_s` of `now`. For receivers; compares in constant time."""
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    stamp, given = fields.get("t", ""), fields.get("v1", "")
    if not (stamp.isascii() and stamp.isdecimal() and given.isascii() and given):
        return False  # a header mangled in any way is no signature, never an exception
    now = time.time() if now is None else now
    if abs(now - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(_digest(secret, int(stamp), body).encode(), given.encode())


def _digest(secret: str, at: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()


def check_callback_url(url: str | None) -> str | None:
    """The URL to POST a producer's callbacks to, checked: http or https, a host, no credentials in it
    (they would be stored and shown), at most MAX_URL_CHARS. `SpecError` naming it otherwise."""
    if url is None:
        return None
    shown = url[:80]
    try:
        parts = urlsplit(url)
        _port = parts.port  # urlsplit refuses a bad port only when it is read
    except ValueError as e:
        raise SpecError(f"callback url {shown!r} is not a URL: {e}") from e
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SpecError(f"callback url {shown!r} must be an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None:
        raise SpecError(f"callback url {shown!r} must not hold credentials: callbacks are signed instead")
    if len(url) > MAX_URL_CHARS or not url.isprintable() or " " in url:
        raise SpecError(
            f"callback url {shown!r} must be at most {MAX_URL_CHARS} printable characters, no spaces"
        )
    return url


def shown_url(url: str) -> str:
    """A callback URL as logs and status show it: scheme, host and path; a query may hold a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
