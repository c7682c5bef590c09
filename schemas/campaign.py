"""A campaign as published: its spec, its jobs and their recipients."""

from __future__ import annotations

import enum
import operator
import os
from typing import Annotated, Literal

import msgspec

from schemas.kaleyra import MAX_BODY_CHARS, UnicodeFlag


class MessageType(enum.StrEnum):
    MKT = "MKT"
    TXN = "TXN"
    OTP = "OTP"
    DEFAULT = "DEFAULT"
    TXND = "TXND"


# The types a suppression list and a sending window apply to: marketing, not OTP or transactional.
MARKETING_TYPES = frozenset({MessageType.MKT, MessageType.DEFAULT})


class CampaignState(enum.StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    # The account's key was refused or the gateway is out of reach: nothing is sent and nothing
    # failed for it; sending resumes by itself once the gateway takes a request again.
    HELD = "held"
    CANCELLED = "cancelled"
    COMPLETED = "completed"  # every recipient settled, at least one submitted
    FAILED = "failed"  # every recipient settled, none submitted (failed, or unknown)


# The states after which nothing of a campaign is sent any more (a `campaign resend` reopens it).
FINISHED_STATES = frozenset({CampaignState.CANCELLED, CampaignState.COMPLETED, CampaignState.FAILED})


# A scheduled campaign (Kaleyra's `time`) is held here until this long before its time, so it can be
# cancelled until then; its chunks then go to Kaleyra, which sends them at the time.
SCHEDULE_LEAD_S = 20 * 60
# Kaleyra refuses a `time` less than 15 minutes ahead (E402): a chunk that would go later than this
# waits for its time and goes without one.
MIN_TIME_AHEAD_S = 16 * 60


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
    # Flash SMS (shown at once, not stored): sent through Kaleyra's `/sms`, 100 numbers a request.
    flash: bool = False
    # Quiet hours: send only inside this daily window (minutes after midnight, opens and closes) in
    # the recipients' local time. Marketing types only.
    send_window: tuple[int, int] | None = None
    # Where the campaign's end and its messages' final delivery reports are POSTed (`schemas.callback`).
    callback_url: str | None = None


class Recipient(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A normalised number, the line of the input it came from and, for a personalised body,
    its values of the body's placeholders (defaults filled in), in `Template.fields` order.

    Structs of the hot path that hold only strings and numbers are `gc=False`: a job's thousands of
    them are left out of the garbage collector's passes (they cannot form a cycle)."""

    # E.164 (`+` and 7 to 15 digits), as producer.numbers normalises it. Not checked again when a
    # worker decodes a job: a pattern there is a real share of a worker's CPU per message.
    to: str
    line: int
    fields: tuple[str, ...] = ()


class Job(msgspec.Struct, frozen=True, kw_only=True):
    """A bounded slice of a campaign's recipients; one dramatiq message carries its index."""

    campaign_id: str
    index: int
    recipients: list[Recipient]
    # Under a sending window: the time zones its recipients may be in (all share them).
    zones: tuple[str, ...] = ()


# The failure code of a recipient put on the account's suppression list after its campaign was
# published: found when its chunk is sent, and not sent.
SUPPRESSED_CODE = "SUPPRESSED"


class InvalidRow(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A row skipped at publish: its line, the value as given and why."""

    line: int
    value: str
    reason: str


class Outcome(enum.StrEnum):
    """Where a recipient ends; each is also a counter of the campaign hash."""

    SUBMITTED = "submitted"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


class ChunkOutcome(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What became of a settled chunk: the job's recipients [offset, offset + size).

    A submitted chunk has one message id per recipient, in order, `""` for a node the gateway
    dropped (those are failed with `code`): `full_message_ids()`. Kaleyra's ids are the request's
    id, ":" and the node's position, so `submitted` stores the start they share once, in
    `id_prefix`, and the rest of each in `message_id_ends`: about 6 bytes a recipient in Redis
    rather than 49. (A field of its own: code from before it finds no ids rather than wrong ones.)
    """

    outcome: Outcome
    size: int
    code: str = ""
    message_ids: list[str] = []  # whole, when they share no start worth taking out
    id_prefix: str = ""
    message_id_ends: list[str] = []  # each id without `id_prefix`; "" for a dropped node
    # False when the reply's numbers could not be matched to the chunk's recipients: the ids
    # are then in reply order, and which recipients were dropped is not known.
    attributed: bool = True
    # Its failed or unknown recipients were published again by `campaign resend`.
    republished: bool = False
    # Submitted recipients (their index in the chunk) published again by `campaign resend --undelivered`:
    # each is sent, counted and reported in its new job from then on.
    resent: list[int] = []

    @classmethod
    def submitted(
        cls, size: int, message_ids: list[str], *, code: str = "", attributed: bool = True
    ) -> ChunkOutcome:
        """The `size` recipients of a chunk the gateway took: `message_ids` one per recipient, `""`
        for a dropped node (in reply order, and perhaps more of them, when not `attributed`)."""
        if prefix := _shared_prefix(message_ids):
            ends = list(map(operator.itemgetter(slice(len(prefix), None)), message_ids))
            return cls(outcome=Outcome.SUBMITTED, size=size, code=code, id_prefix=prefix,
                       message_id_ends=ends, attributed=attributed)  # fmt: skip
        return cls(outcome=Outcome.SUBMITTED, size=size, code=code, message_ids=message_ids,
                   attributed=attributed)  # fmt: skip

    def full_message_ids(self) -> list[str]:
        """One message id per recipient, in order, `""` for a node the gateway dropped."""
        if not self.id_prefix:
            return self.message_ids
        prefix = self.id_prefix
        return [prefix + end if end else "" for end in self.message_id_ends]

    def first_message_id(self) -> str:
        """The id of its first node Kaleyra accepted ("" for none): whose request it was."""
        if not self.id_prefix:
            return next(filter(None, self.message_ids), "")
        end = next(filter(None, self.message_id_ends), None)
        return "" if end is None else self.id_prefix + end

    def counts(self) -> dict[str, int]:
        """Recipients per campaign counter."""
        if self.outcome is not Outcome.SUBMITTED:
            return {self.outcome.value: self.size}
        dropped = (self.message_id_ends if self.id_prefix else self.message_ids).count("")
        return {Outcome.SUBMITTED.value: self.size - dropped, Outcome.FAILED.value: dropped}


# A shared start shorter than this is not worth taking out.
_MIN_PREFIX = 8


def _shared_prefix(message_ids: list[str]) -> str:
    """The start every non-empty id shares, leaving each at least a character (a dropped node's
    id is the empty one); "" if shorter than `_MIN_PREFIX`. Found from the first and the last id
    in sorted order rather than by comparing each id in Python: at a thousand ids a chunk, that
    would cost more than the shorter record saves."""
    present = [i for i in message_ids if i] if "" in message_ids else message_ids
    if not present:
        return ""
    # Every string that sorts between two others starts with what they share.
    first, last = min(present), max(present)
    prefix = os.path.commonprefix((first, last))  # noqa: RUF071 (characters, not path components)
    if prefix == first:  # an id that is all prefix sorts first: it keeps a character
        prefix = prefix[:-1]
    return prefix if len(prefix) >= _MIN_PREFIX else ""
