"""How every record the data model stores is encoded: one encoder and one decoder each.

Records read by people with `redis-cli` or by Lua (the spec, a chunk's outcome) are JSON; the
bulky ones only Python reads (jobs, skipped rows) are msgpack. Every field added since a record
was first stored has a default, so what an older version wrote still decodes
(`tests/unit/test_records.py` holds such bytes).
"""

from __future__ import annotations

import msgspec

from schemas.campaign import CampaignSpec, ChunkOutcome, InvalidRow, Job, Recipient
from schemas.message import SingleMessage

_json = msgspec.json.Encoder()
_msgpack = msgspec.msgpack.Encoder()

_spec = msgspec.json.Decoder(CampaignSpec)
_outcome = msgspec.json.Decoder(ChunkOutcome)
_job = msgspec.msgpack.Decoder(Job)
_invalid_row = msgspec.msgpack.Decoder(InvalidRow)
_recipient = msgspec.msgpack.Decoder(Recipient)
_message = msgspec.msgpack.Decoder(SingleMessage)


def encode_spec(spec: CampaignSpec) -> bytes:
    """The campaign hash's `spec` field."""
    return _json.encode(spec)


def decode_spec(data: bytes) -> CampaignSpec:
    return _spec.decode(data)


def encode_job(job: Job) -> bytes:
    """A field of the campaign's jobs hash (`keys.jobs`), named by the job's index."""
    return _msgpack.encode(job)


def decode_job(data: bytes) -> Job:
    return _job.decode(data)


def encode_outcome(outcome: ChunkOutcome) -> bytes:
    """A settled chunk's entry in the outcomes hash (`keys.outcomes`), named `job:offset`."""
    return _json.encode(outcome)


def decode_outcome(data: bytes) -> ChunkOutcome:
    return _outcome.decode(data)


def encode_invalid_row(row: InvalidRow) -> bytes:
    """An entry of the campaign's invalid rows list (`keys.invalid`)."""
    return _msgpack.encode(row)


def decode_invalid_row(data: bytes) -> InvalidRow:
    return _invalid_row.decode(data)


def encode_left_out(recipient: Recipient) -> bytes:
    """An entry of the duplicate or suppressed lists: the number and its line, never field values."""
    return _msgpack.encode(Recipient(recipient.to, recipient.line) if recipient.fields else recipient)


def decode_left_out(data: bytes) -> Recipient:
    return _recipient.decode(data)


def encode_waiting(opens_at: float, recipients: int) -> str:
    """A field of the waiting hash (`keys.waiting`): when a job's sending window opens, and for how many."""
    return f"{opens_at:.0f}|{recipients}"


def decode_waiting(data: bytes) -> tuple[float, int]:
    opens_at, recipients = data.split(b"|")
    return float(opens_at), int(recipients)


def encode_message(message: SingleMessage) -> bytes:
    """The `m` field of a single message's stream entry (`keys.message_stream`)."""
    return _msgpack.encode(message)


def decode_message(data: bytes) -> SingleMessage:
    return _message.decode(data)
