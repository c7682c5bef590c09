"""A campaign as published: its spec, its jobs and their recipients."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

import msgspec

from schemas.kaleyra import MAX_BODY_CHARS, UnicodeFlag


class MessageType(enum.StrEnum):
    MKT = "MKT"
    TXN = "TXN"
    OTP = "OTP"
    DEFAULT = "DEFAULT"
    TXND = "TXND"


class CampaignState(enum.StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


E164 = Annotated[str, msgspec.Meta(pattern=r"^\+[1-9][0-9]{6,14}$")]


class CampaignSpec(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What to send. Validated by the producer before anything is published.

    `unicode` None means "the worker's default" (CAMPAIGN_DEFAULT_UNICODE, else auto).
    `prefix` is the one the producer normalised numbers with, if any.
    """

    campaign_id: str
    sender: str
    type: MessageType
    body: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_BODY_CHARS)]
    prefix: str | None = None
    unicode: UnicodeFlag | None = None
    template_id: str | None = None
    entity_id: str | None = None
    callback_profile_id: str | None = None
    at: str | None = None
    name: str | None = None
    # A chunk whose worker vanished mid-send: `hold` reports it unknown, `resend` sends it again.
    on_unknown: Literal["hold", "resend"] = "hold"
    # Unix time after which unsent chunks are cancelled rather than sent late.
    expires_at: float | None = None


class Recipient(msgspec.Struct, frozen=True, array_like=True):
    """A normalised number and the line of the input it came from."""

    to: E164
    line: int


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A bounded slice of a campaign's recipients; one dramatiq message carries its index."""

    campaign_id: str
    index: int
    recipients: list[Recipient]


class InvalidRow(msgspec.Struct, frozen=True, array_like=True):
    """A row skipped at publish: its line, the value as given and why."""

    line: int
    value: str
    reason: str
