"""`POST /v1/{sid}/sms` with `flash=1` (flash-sms.md): one body for up to 100 comma-separated numbers."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from ops.simulator.record import AcceptedMessage
from ops.simulator.replies import E402_MESSAGE, Rejection, flat
from ops.simulator.sms_endpoint import SmsEndpoint
from ops.simulator.validation import MESSAGE_TYPES, UNICODE_FLAGS, recipient_digits, schedulable
from schemas.error_codes import CATALOGUE
from schemas.kaleyra import MAX_BODY_CHARS, MAX_FLASH_NUMBERS


class IncomingFlash(msgspec.Struct, frozen=True):
    to: str | int | None = None
    sender: str | None = None
    type: str | None = None
    body: str | None = None
    flash: str | int | None = None
    time: str | None = None
    unicode: str | int | None = None
    template_id: str | None = None

    def numbers(self) -> list[str]:
        return [n.strip() for n in str(self.to).split(",")] if self.to not in (None, "") else []


class FlashData(msgspec.Struct, frozen=True, gc=False):
    message_id: str
    recipient: str


class FlashReply(msgspec.Struct, frozen=True):
    """The documented success shape, `"error": {}` included."""

    id: str
    sender: str
    type: str
    flash: int
    body: str
    createdDateTime: str
    totalCount: int
    data: list[FlashData]
    dlrurl: None = None
    error: dict[str, str] = {}


_DECODER = msgspec.json.Decoder(IncomingFlash)


class FlashEndpoint(SmsEndpoint):
    __slots__ = ()

    def _decode(self, body: bytes) -> IncomingFlash:
        return _DECODER.decode(body)

    def _nodes(self, payload: IncomingFlash) -> int:
        return len(payload.numbers())

    def _validate(self, payload: IncomingFlash, reference: str, now: datetime) -> Rejection | None:
        numbers = payload.numbers()
        if not numbers:
            return 400, flat("E600", CATALOGUE["E600"].description, "to", "missing or empty")
        if len(numbers) > MAX_FLASH_NUMBERS:
            message = "If Type is TXN then mobile numbers should not be more than 100."  # the docs' wording
            return 400, flat("E405", message, "to", message)
        if not payload.sender:
            return 400, flat("E616", CATALOGUE["E616"].description, "sender", "missing or empty")
        if payload.type and payload.type not in MESSAGE_TYPES:
            return 400, flat("E615", CATALOGUE["E615"].description, "type", f"{payload.type!r}")
        if payload.flash is not None and str(payload.flash) not in ("0", "1"):
            return 400, flat("E606", CATALOGUE["E606"].description, "flash", f"{payload.flash!r}")
        if not payload.body:
            return 400, flat("E601", CATALOGUE["E601"].description, "body", "missing or empty")
        if len(payload.body) > MAX_BODY_CHARS:
            return 400, flat("E401", CATALOGUE["E401"].description, "body", f"{len(payload.body)} characters")
        if payload.unicode is not None and str(payload.unicode).lower() not in UNICODE_FLAGS:
            return 400, flat("E604", CATALOGUE["E604"].description, "unicode", f"{payload.unicode!r}")
        if payload.time is not None and not schedulable(payload.time, now):
            return 400, flat("E402", E402_MESSAGE, "time", E402_MESSAGE)
        if not any(recipient_digits(n) for n in numbers):
            return 400, flat("E406", CATALOGUE["E406"].description, "to", "no number of 7 to 15 digits")
        return None

    def _accept(
        self, payload: IncomingFlash, index: int, now: datetime
    ) -> tuple[FlashReply, list[AcceptedMessage]]:
        batch = str(uuid.uuid4())
        flash = str(payload.flash) == "1"  # without the flag, /sms sends an ordinary SMS
        body, sender = payload.body or "", payload.sender or ""
        unicode = "auto" if payload.unicode in (None, "") else str(payload.unicode).lower()
        data: list[FlashData] = []
        accepted: list[AcceptedMessage] = []
        for position, number in enumerate(payload.numbers()):
            digits = recipient_digits(number)
            if digits is None:
                continue
            message_id = f"{batch}:{position}"
            data.append(FlashData(message_id, digits))
            accepted.append(
                AcceptedMessage(message_id, number, body, sender, unicode, index, payload.time, flash)
            )
        reply = FlashReply(
            id=batch, sender=sender, type=payload.type or "DEFAULT", flash=int(flash), body=body,
            createdDateTime=now.strftime("%Y-%m-%d %H:%M:%S+00:00"), totalCount=len(data), data=data,
        )  # fmt: skip
        return reply, accepted
