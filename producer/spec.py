"""Validate a campaign's options into a `CampaignSpec`, refusing bad ones with a one-line reason; the
`check_*` of each option are shared with single messages (`producer.messages`)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Literal

from producer.numbers import is_country_code
from schemas.callback import check_callback_url
from schemas.campaign import MARKETING_TYPES, CampaignSpec, MessageType
from schemas.errors import SpecError
from schemas.gsm7 import GSM7
from schemas.kaleyra import MAX_BODY_CHARS, UnicodeFlag
from schemas.settings import UNICODE_FLAGS, Settings, parse_duration, parse_share
from schemas.template import CONTROL, SURROGATE, Template
from schemas.window import parse_window

# An alphanumeric sender ID (up to 11 characters) or a number used as sender.
SENDER_PATTERN = re.compile(r"^(?:[A-Za-z0-9]{1,11}|\+?[0-9]{3,15})$")
IDENTIFIER_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# India's DLT platform registers entities (principal entity IDs) and templates under numeric IDs,
# 19 digits today; the documents' samples are masked 14- and 16-character ones.
DLT_ID_PATTERN = re.compile(r"^[0-9]{12,25}$")
MIN_SCHEDULE_AHEAD = timedelta(minutes=15)
MAX_SCHEDULE_MONTHS = 3


def build_spec(
    *,
    settings: Settings,
    sender: str,
    type: str,
    body: str,
    prefix: str | None = None,
    unicode: str | None = None,
    template_id: str | None = None,
    entity_id: str | None = None,
    callback_profile_id: str | None = None,
    at: str | None = None,
    name: str | None = None,
    on_unknown: str = "hold",
    expires_in: str | None = None,
    flash: bool = False,
    send_window: str | None = None,
    callback_url: str | None = None,
    now: datetime | None = None,
) -> CampaignSpec:
    """Check every option and return the spec to publish; raise `SpecError` naming the bad value."""
    now = now or datetime.now(UTC)
    message_type = check_type(type)
    unicode_flag = check_unicode(unicode, body)
    template_id, entity_id = check_dlt_id("template-id", template_id), check_dlt_id("entity-id", entity_id)
    scheduled, expires_at = _schedule(at, now), _expiry(expires_in, now)
    if scheduled and message_type is MessageType.OTP:
        raise SpecError("type OTP cannot be scheduled (Kaleyra's schedule-sms.md); send it without --at")
    if scheduled and expires_at is not None and expires_at <= datetime.fromisoformat(scheduled).timestamp():
        raise SpecError(
            f"expires-in {expires_in!r} ends before the campaign's time {scheduled}: nothing would be sent"
        )
    check_dlt_required(settings, template_id, entity_id)
    return CampaignSpec(
        campaign_id=uuid.uuid4().hex,
        sender=check_sender(sender),
        type=message_type,
        body=check_body(body),
        prefix=check_prefix(prefix or settings.default_prefix),
        unicode=unicode_flag,
        template_id=template_id,
        entity_id=entity_id,
        callback_profile_id=check_identifier("callback-profile-id", callback_profile_id),
        at=scheduled,
        name=_name(name),
        on_unknown=_on_unknown(on_unknown),
        expires_at=expires_at,
        flash=_flash(flash, body),
        send_window=_send_window(send_window, message_type),
        callback_url=check_callback_url(callback_url),
    )


def check_dlt_required(settings: Settings, template_id: str | None, entity_id: str | None) -> None:
    """On the IN pod with KALEYRA_DLT_REQUIRED=1, both DLT IDs, or `SpecError` naming the missing."""
    if settings.dlt_required and settings.region == "in" and not (template_id and entity_id):
        missing = " and ".join(
            option
            for option, value in (("--template-id", template_id), ("--entity-id", entity_id))
            if not value
        )
        raise SpecError(
            f"{missing} required: on the IN pod this account sends only with the template and entity IDs "
            "registered on the DLT platform (KALEYRA_DLT_REQUIRED=1)"
        )


def check_sender(sender: str) -> str:
    sender = sender.strip()
    if not SENDER_PATTERN.match(sender):
        raise SpecError(
            f"sender {sender!r} is not a sender ID: use 1-11 letters and digits, or a phone number"
        )
    return sender


def check_type(value: str) -> MessageType:
    try:
        return MessageType(value.strip().upper())
    except ValueError:
        allowed = ", ".join(MessageType)
        raise SpecError(f"type {value!r} is not one of {allowed}") from None


def check_body(body: str) -> str:
    if not body.strip():
        raise SpecError("body is empty: give the text of the message")
    if found := SURROGATE.search(body):
        point = ord(found[0])
        if 0xDC80 <= point <= 0xDCFF:  # how Python hands over a byte of argv that is not UTF-8
            raise SpecError(
                f"body has bytes that are not UTF-8 at character {found.start()} (the byte "
                f"0x{point - 0xDC00:02x}); save the text as UTF-8"
            )
        raise SpecError(
            f"body has a lone surrogate (U+{point:04X}) at character {found.start()}: not valid text"
        )
    if found := CONTROL.search(body):
        raise SpecError(
            f"body has the control character {found[0]!r} (U+{ord(found[0]):04X}) at character "
            f"{found.start()}; a message may hold line breaks and tabs, no other control character"
        )
    if len(body) > MAX_BODY_CHARS:
        raise SpecError(f"body has {len(body)} characters; Kaleyra accepts at most {MAX_BODY_CHARS} (E401)")
    return body


def check_unicode(value: str | None, body: str) -> UnicodeFlag | None:
    if value is None:
        return None
    flag = value.strip().lower()
    if flag not in UNICODE_FLAGS:
        raise SpecError(f"unicode {value!r} must be auto, 0 or 1")
    if flag == "0":
        outside = next((ch for ch in body if ch not in GSM7), None)
        if outside is not None:
            raise SpecError(f"unicode 0 cannot carry {outside!r} in the body (not GSM-7); use auto or 1")
    return "0" if flag == "0" else "1" if flag == "1" else "auto"


def check_prefix(prefix: str | None) -> str | None:
    """A country calling code such as +91, or `SpecError`."""
    if prefix is None:
        return None
    prefix = prefix.strip()
    if not is_country_code(prefix):
        raise SpecError(f"prefix {prefix!r} is not a country calling code like +91")
    return prefix


def check_max_invalid(value: str | None) -> float | None:
    """`--max-invalid`: a share such as 5% or 0.05, or `SpecError`; None if not given."""
    if value is None:
        return None
    share = parse_share(value)
    if share is None:
        raise SpecError(f"max-invalid {value!r} is neither a percentage like 5% nor a fraction like 0.05")
    return share


def check_identifier(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not IDENTIFIER_PATTERN.match(value):
        raise SpecError(f"{option} {value!r} must be 1-64 letters, digits, '_' or '-'")
    return value


def check_dlt_id(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not DLT_ID_PATTERN.match(value):
        raise SpecError(
            f"{option} {value!r} is not a DLT ID: the platform's IDs are 12 to 25 digits, "
            "e.g. 1107161234567890123"
        )
    return value


def _flash(flash: bool, body: str) -> bool:
    if flash and Template(body).personalised:
        raise SpecError(
            "flash SMS go through Kaleyra's /sms endpoint, one body for every number of a request; "
            "a personalised body ({field}) cannot be flashed"
        )
    return flash


def _send_window(window: str | None, message_type: MessageType) -> tuple[int, int] | None:
    if window is None:
        return None
    if message_type not in MARKETING_TYPES:
        raise SpecError(
            f"send-window applies to marketing campaigns (MKT, DEFAULT); type {message_type.value} "
            "is sent whenever it is published"
        )
    parsed = parse_window(window)
    if parsed is None:
        raise SpecError(f"send-window {window!r} is not a daily window like 09:00-21:00 (24-hour local time)")
    return parsed


def _name(name: str | None) -> str | None:
    if name is None:
        return None
    if not name.strip() or len(name) > 100 or not name.isprintable():
        shown = f"{name[:80]!r}{'...' if len(name) > 80 else ''}"
        raise SpecError(f"name {shown} must be 1-100 printable characters")
    return name.strip()


def _on_unknown(policy: str) -> Literal["hold", "resend"]:
    if policy == "hold":
        return "hold"
    if policy == "resend":
        return "resend"
    raise SpecError(f"on-unknown {policy!r} must be hold or resend")


def _expiry(expires_in: str | None, now: datetime) -> float | None:
    """`--expires-in 90m` (s, m, h or d; plain seconds too) as a Unix time."""
    if expires_in is None:
        return None
    seconds = parse_duration(expires_in)
    if seconds is None:
        raise SpecError(f"expires-in {expires_in!r} is not a duration like 30m, 2h or 1d")
    return now.timestamp() + seconds


def _schedule(at: str | None, now: datetime) -> str | None:
    """Kaleyra's `time`: ISO 8601 with an offset, 15 minutes to 3 months ahead (E402)."""
    if at is None:
        return None
    try:
        when = datetime.fromisoformat(at.strip())
    except ValueError:
        raise SpecError(f"at {at!r} is not an ISO 8601 time like 2026-12-01T10:00:00+05:30") from None
    if when.tzinfo is None:
        raise SpecError(f"at {at!r} has no UTC offset; add one, e.g. +05:30")
    if when - now < MIN_SCHEDULE_AHEAD:
        raise SpecError(f"at {at!r} is less than 15 minutes ahead; Kaleyra refuses it (E402)")
    if when > _add_months(now, MAX_SCHEDULE_MONTHS):
        raise SpecError(f"at {at!r} is more than 3 months ahead; Kaleyra refuses it (E402)")
    return when.replace(microsecond=0).isoformat()


def _add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in range(moment.day, 27, -1):  # clamp 31 Jan + 1 month to 28/29 Feb
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    return moment.replace(year=year, month=month, day=min(moment.day, 28))
