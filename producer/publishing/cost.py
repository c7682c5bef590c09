"""What a campaign's messages cost: SMS segments over all its recipients, and messages per encoding."""

from __future__ import annotations

from producer.segments import encoding_of, segments
from schemas.campaign import Recipient
from schemas.template import Template


class Cost:
    """Counted as the recipients are batched: each one's message, or the shared body's once at the end."""

    def __init__(self, template: Template, unicode: str) -> None:
        self.template, self.unicode = template, unicode
        self.segments = 0
        self.encodings: dict[str, int] = {}  # messages per encoding (GSM-7, UCS-2)

    def count(self, recipients: list[Recipient]) -> None:
        """Each recipient's own message (a personalised body)."""
        render, encodings = self.template.render, self.encodings
        for r in recipients:
            body = render(r.fields)
            encoding = encoding_of(body, self.unicode)  # type: ignore[arg-type]
            encodings[encoding.value] = encodings.get(encoding.value, 0) + 1
            self.segments += segments(body, encoding)

    def count_shared(self, messages: int) -> None:
        """`messages` of the one body every recipient gets."""
        body = self.template.render(())
        encoding = encoding_of(body, self.unicode)  # type: ignore[arg-type]
        self.encodings = {encoding.value: messages}
        self.segments = segments(body, encoding) * messages
