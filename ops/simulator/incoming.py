"""What clients send to `/sms/json`, decoded leniently so that validation can answer with Kaleyra's codes.

`schemas.kaleyra.SmsJsonRequest` is the strict shape our worker sends; decoding into it
would refuse a bad body with msgspec's message instead of E601/E401/E604.
"""

from __future__ import annotations

import msgspec


class IncomingNode(msgspec.Struct, frozen=True, gc=False):
    to: str | int | None = None  # the docs call it "Numeric"; both forms are seen
    from_: str | None = msgspec.field(default=None, name="from")
    body: str | None = None
    template_id: str | None = None
    unicode: str | int | None = None


class IncomingRequest(msgspec.Struct, frozen=True):
    sms: list[IncomingNode] | None = None
    channel: str | None = None
    type: str | None = None
    source: str | None = None
    time: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    body: str | None = None
    template_id: str | None = None
    unicode: str | int | None = None


DECODER = msgspec.json.Decoder(IncomingRequest)


# A node's field overrides the top-level one; an empty node field counts as absent.
def effective_body(node: IncomingNode, request: IncomingRequest) -> str | None:
    return node.body or request.body


def effective_sender(node: IncomingNode, request: IncomingRequest) -> str | None:
    return node.from_ or request.from_


def effective_unicode(node: IncomingNode, request: IncomingRequest) -> str:
    """Lower-cased; "auto" when neither level sets it. Not `or`: the integer 0 is a value."""
    flag = node.unicode if node.unicode not in (None, "") else request.unicode
    return "auto" if flag in (None, "") else str(flag).lower()
