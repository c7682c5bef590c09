"""From a job, or a batch of single messages, to `/sms/json` bodies: chunking, the prefix and unicode
defaults, msgspec encoding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from schemas.campaign import MARKETING_TYPES, MIN_TIME_AHEAD_S, CampaignSpec, MessageType, Recipient
from schemas.gsm7 import needs_ucs2
from schemas.kaleyra import (
    MAX_FLASH_NUMBERS,
    MAX_NODES_PER_REQUEST,
    FlashSmsRequest,
    SmsJsonRequest,
    SmsNode,
    UnicodeFlag,
)
from schemas.message import SingleMessage
from schemas.settings import Settings
from schemas.template import Template
from worker.json_text import verbatim

_encoder = msgspec.json.Encoder()


# E405: "If Type is TXN then mobile numbers should not be more than 100".
MAX_TXN_NODES = 100


def max_nodes(message_type: MessageType) -> int:
    """The most nodes Kaleyra takes in one request of this type: one for OTP (E708), 100 for TXN
    (E405), else 1000."""
    if message_type is MessageType.OTP:
        return 1
    if message_type is MessageType.TXN:
        return MAX_TXN_NODES
    return MAX_NODES_PER_REQUEST


def chunk_size(spec: CampaignSpec, settings: Settings) -> int:
    """Nodes per request: `max_nodes` of its type, at most 100 for flash SMS, at most CAMPAIGN_CHUNK_SIZE."""
    if spec.type is MessageType.OTP:
        return 1
    if spec.flash:
        return min(settings.chunk_size, MAX_FLASH_NUMBERS)
    return min(settings.chunk_size, max_nodes(spec.type))


def chunk_at(recipients: Sequence[Recipient], offset: int, size: int) -> Sequence[Recipient]:
    """The next chunk of a job: at most `size` recipients from `offset`, the job's settled count.

    The worker walks a job with it, moving the offset by what the ledger settles, so a job
    resumes wherever its progress stands, whatever chunk size an earlier worker used.
    """
    return recipients[offset : offset + size]


def resolve_unicode(spec: CampaignSpec, settings: Settings) -> UnicodeFlag:
    """The campaign's flag, else CAMPAIGN_DEFAULT_UNICODE; a body needing UCS-2 is never sent as 0."""
    return _unicode_for(spec.unicode or settings.default_unicode, spec.body)


def _unicode_for(flag: str, body: str) -> UnicodeFlag:
    if flag == "0" and needs_ucs2(body):
        return "1"
    return "0" if flag == "0" else "1" if flag == "1" else "auto"


# A single message's fields that may differ within one request: each goes at the top level when every
# message of the request has the same value, else in each node.
_NODE_FIELDS = ("from_", "body", "template_id", "entity_id", "unicode", "callback_profile_id")


def encode_messages(messages: Sequence[SingleMessage], settings: Settings) -> bytes:
    """One `/sms/json` body for single messages of one type (the caller groups them; `to` is E.164
    already): a field they all share goes once at the top level, one where they differ in each node."""
    rows = [_node_fields(message, settings) for message in messages]
    first = rows[0]
    shared = {name: first[name] for name in _NODE_FIELDS if all(row[name] == first[name] for row in rows)}
    nodes = [
        SmsNode(to=message.to, **{name: value for name, value in row.items() if name not in shared})
        for message, row in zip(messages, rows, strict=True)
    ]
    return _encoder.encode(SmsJsonRequest(sms=nodes, channel="SMS", type=messages[0].type.value, **shared))


def _node_fields(message: SingleMessage, settings: Settings) -> dict[str, Any]:
    return {
        "from_": message.sender,
        "body": message.body,
        "template_id": message.template_id,
        "entity_id": message.entity_id,
        "unicode": _unicode_for(message.unicode or settings.default_unicode, message.body),
        "callback_profile_id": message.callback_profile_id,
    }


class PayloadBuilder:
    """Per-job constants resolved once; `encode` is called per chunk."""

    def __init__(self, spec: CampaignSpec, settings: Settings) -> None:
        self.spec = spec
        self.unicode = resolve_unicode(spec, settings)
        self.prefix = spec.prefix or settings.default_prefix
        self.template = Template(spec.body)
        self.marketing = spec.type in MARKETING_TYPES  # the suppression list holds marketing opt-outs
        # A shared body goes once at the top level; a personalised one in every node.
        self.shared_body = None if self.template.personalised else self.template.render(())
        self.at = datetime.fromisoformat(spec.at).timestamp() if spec.at else None
        self.time = spec.at  # Kaleyra's `time`, while it is far enough ahead
        self._rest: tuple[str | None, bytes] | None = None  # `_request_rest` for that `time`

    @property
    def due(self) -> float | None:
        """When Kaleyra will deliver the next chunk, if it goes with a `time`."""
        return self.at if self.time is not None else None

    def schedule(self, now: float) -> float:
        """Seconds the next chunk must wait (0: send it now). A scheduled chunk goes with Kaleyra's
        `time` while that is far enough ahead for Kaleyra to take it (E402); closer, it waits for
        its time and goes without one."""
        if self.at is None or self.at - now >= MIN_TIME_AHEAD_S:
            return 0.0
        self.time = None
        return max(self.at - now, 0.0)

    def request(self, recipients: Sequence[Recipient]) -> SmsJsonRequest:
        spec = self.spec
        if self.shared_body is None:
            nodes = [self._personalised_node(r) for r in recipients]
        else:
            nodes = [SmsNode(to=r.to) for r in recipients]
        return SmsJsonRequest(
            sms=nodes,
            channel="SMS",
            type=spec.type.value,
            prefix=self.prefix,
            time=self.time,
            from_=spec.sender,
            body=self.shared_body,
            template_id=spec.template_id,
            entity_id=spec.entity_id,
            unicode=self.unicode,
            callback_profile_id=spec.callback_profile_id,
        )

    def _personalised_node(self, recipient: Recipient) -> SmsNode:
        body = self.template.render(recipient.fields)
        # Under unicode 0, a value outside GSM-7 would be garbled: that node alone goes as UCS-2.
        if self.unicode == "0" and needs_ucs2(body):
            return SmsNode(to=recipient.to, body=body, unicode="1")
        return SmsNode(to=recipient.to, body=body)

    def flash_request(self, recipients: Sequence[Recipient]) -> FlashSmsRequest:
        """The `/sms` body of a flash campaign (never personalised: the producer refuses that)."""
        spec = self.spec
        return FlashSmsRequest(
            to=",".join(r.to for r in recipients),
            sender=spec.sender,
            type=spec.type.value,
            body=self.shared_body or "",
            flash=1,
            time=self.time,
            unicode=self.unicode,
            template_id=spec.template_id,
            entity_id=spec.entity_id,
            callback_profile_id=spec.callback_profile_id,
        )

    def encode(self, recipients: Sequence[Recipient]) -> bytes:
        if self.spec.flash:
            return _encoder.encode(self.flash_request(recipients))
        if self.shared_body is not None and (nodes := _plain_nodes(recipients)) is not None:
            return _REQUEST_START + nodes + self._request_rest()
        return _encoder.encode(self.request(recipients))

    def _request_rest(self) -> bytes:
        """The request's JSON after its `sms` array (its fields are the job's, and its `time`)."""
        if self._rest is None or self._rest[0] != self.time:
            encoded = _encoder.encode(self.request([Recipient("", 0)]))
            assert encoded.startswith(_REQUEST_START + _EMPTY_NODE)
            self._rest = (self.time, encoded[len(_REQUEST_START + _EMPTY_NODE) :])
        return self._rest[1]


# A request encodes its `sms` array first; with a shared body each node is `{"to": number}` alone.
_REQUEST_START, _EMPTY_NODE = b'{"sms":', b'[{"to":""}]'


def _plain_nodes(recipients: Sequence[Recipient]) -> bytes | None:
    """The `sms` array of a shared-body request, joined: the bytes msgspec writes for the nodes one
    by one, in under half the instructions. None when a number would be escaped (never for the
    E.164 numbers the producer writes), or when there are none."""
    numbers = [r.to for r in recipients]
    if not verbatim(numbers):
        return None
    return ('[{"to":"' + '"},{"to":"'.join(numbers) + '"}]').encode()
