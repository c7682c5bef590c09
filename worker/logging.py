"""structlog set up once per process: JSON lines on stdout, cached loggers, bytes all the way.

One `sms.submitted` event is written per accepted message, so this is the hot path. A chunk's
events go through structlog in one call (`log_submitted`): the processors run once per chunk,
and the renderer encodes the chunk's shared fields once with msgspec and formats a line per
message id around them (values that would need escaping go through msgspec line by line). A
float timestamp avoids date formatting, and events are buffered rather than flushed one by one
(a write system call per event was a fifth of a worker's CPU), in a buffer that holds a chunk's
events (one write per chunk, not one per 8 KiB); `flush_events()` pushes them out once per
chunk, before its settlement.
"""

from __future__ import annotations

import atexit
import functools
import io
import logging
import sys
import time
from collections.abc import MutableMapping, Sequence
from typing import Any, BinaryIO, NamedTuple

import msgspec
import structlog

from schemas.kaleyra import SubmittedSms, numbers_of
from schemas.masking import as_e164, mask_number, mask_numbers
from worker.json_text import verbatim

__all__ = [
    "SubmittedMessage",
    "configure_logging",
    "flush_events",
    "log_messages_submitted",
    "log_submitted",
    "mask_number",
]

# A 1000-message chunk's events are about 200 KB: a buffer that holds them is written in one go.
EVENT_BUFFER_BYTES = 1 << 20


def configure_logging(stream: BinaryIO | None = None, *, level: int = logging.INFO) -> None:
    """Events go to `stream`, else the process's real stdout.

    dramatiq points `sys.stdout` of its worker processes at a pipe into the parent's
    stderr; `sys.__stdout__` is still the stdout the operator gave the worker.
    """
    out: BinaryIO = stream if stream is not None else _stdout()
    wrapper = structlog.make_filtering_bound_logger(level)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            _timestamp,
            structlog.processors.format_exc_info,
            _render,
        ],
        wrapper_class=wrapper,
        logger_factory=lambda *_args: _BufferedLogger(out),
        cache_logger_on_first_use=True,
    )
    global _stream, _message_events, _single_events
    _stream = out
    _single_events = structlog.get_logger("worker")  # a logger cached on first use: one per configuration
    # A chunk's `sms.submitted` events: a logger of its own with the shortest chain (no exceptions to
    # format, the level set with the time), whose renderer writes a line per message.
    _message_events = structlog.wrap_logger(
        _BufferedLogger(out),
        processors=[_level_and_timestamp, _render_each_message],
        wrapper_class=wrapper,
        cache_logger_on_first_use=True,
    )


_stream: BinaryIO | None = None
_message_events: Any = structlog.get_logger("worker")  # until configure_logging
_single_events: Any = structlog.get_logger("worker")


def _stdout() -> BinaryIO:
    """The process's stdout behind a buffer of our own size, flushed at exit as well."""
    sys.__stdout__.flush()  # type: ignore[union-attr]
    raw = io.FileIO(sys.__stdout__.fileno(), "wb", closefd=False)  # type: ignore[union-attr]
    out = io.BufferedWriter(raw, buffer_size=EVENT_BUFFER_BYTES)
    atexit.register(out.flush)
    return out


def log_submitted(
    accepted: Sequence[SubmittedSms],
    *,
    lines: Sequence[int | None] | None = None,
    full_numbers: bool = False,
    **context: Any,
) -> None:
    """One `sms.submitted` event per accepted message: its id, its recipient in E.164 as `campaign
    report` shows it (masked, `+91******3210`, unless `full_numbers`), its recipient's `line` in the
    campaign's file (row from 1 for dicts; null where the gateway's reply could not be matched to a
    recipient), and `context` (the chunk's campaign, job and offset). A chunk's events share its
    timestamp."""
    message_ids = [sms.message_id for sms in accepted]
    numbers = numbers_of(accepted)
    recipients = as_e164(numbers) if full_numbers else mask_numbers(numbers)
    shown_lines = lines if lines is not None else [None] * len(message_ids)
    if _stream is None:  # structlog as the process left it: an event per message
        for message_id, recipient, line in zip(message_ids, recipients, shown_lines, strict=True):
            _message_events.info(
                "sms.submitted", **context, message_id=message_id, recipient=recipient, line=line
            )
    elif message_ids:
        _message_events.info(
            "sms.submitted",
            **context,
            **{_EACH_MESSAGE: (_CHUNK_COLUMNS, (message_ids, recipients, shown_lines))},
        )


class SubmittedMessage(NamedTuple):
    """A single message Kaleyra accepted: its `message_id`, our id (`message`), the producer's
    `reference` and the recipient (E.164)."""

    message_id: str
    message: str
    reference: str | None
    number: str


_SINGLE_COLUMNS = ("message_id", "message", "reference", "recipient")


def log_messages_submitted(submitted: Sequence[SubmittedMessage], *, full_numbers: bool = False) -> None:
    """The `sms.submitted` event of each accepted single message of a request: Kaleyra's `message_id`,
    `message` (our id), the producer's `reference`, and its recipient masked as campaign events show
    it, unless `full_numbers`. One structlog call for the request, sharing its time."""
    numbers = [one.number for one in submitted]
    columns = (
        [one.message_id for one in submitted],
        [one.message for one in submitted],
        [one.reference for one in submitted],
        numbers if full_numbers else [mask_number(number) for number in numbers],
    )
    if _stream is None:  # structlog as the process left it: an event per message
        for values in zip(*columns, strict=True):
            _single_events.info("sms.submitted", **dict(zip(_SINGLE_COLUMNS, values, strict=True)))
    elif submitted:
        _message_events.info("sms.submitted", **{_EACH_MESSAGE: (_SINGLE_COLUMNS, columns)})


def flush_events() -> None:
    """Write out the events buffered so far: before a chunk is settled, and at shutdown."""
    if _stream is not None:
        _stream.flush()


class _BufferedLogger:
    """structlog's BytesLogger without its flush after every event (the stream's own lock keeps
    lines whole across threads)."""

    __slots__ = ("_write",)

    def __init__(self, stream: BinaryIO) -> None:
        self._write = stream.write

    def msg(self, message: bytes) -> None:
        self._write(message + b"\n")

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


# Values msgspec cannot encode (exceptions, paths) are logged as their str().
_encoder = msgspec.json.Encoder(enc_hook=str)


def _render(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> bytes:
    return _encoder.encode(event)


# The key under which `log_submitted` and `log_messages_submitted` hand their messages to the
# renderer (names, then a column of values per name): no event field's name.
_EACH_MESSAGE = "__each_message"
_CHUNK_COLUMNS = ("message_id", "recipient", "line")


def _render_each_message(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> bytes:
    """A line per message: the event with the message's columns put in after the context, before
    `event`, as a call per message would have placed them."""
    names_each, columns = event.pop(_EACH_MESSAGE)
    fields = list(event.items())
    split = [name for name, _ in fields].index("event")
    if names_each == _CHUNK_COLUMNS and verbatim(columns[0]) and verbatim(columns[1]):
        # A chunk's events, Kaleyra's usual ids and numbers: the shared fields are encoded once; the
        # values go in as they are, which is how msgspec would write them (a line is a number, or null).
        message_ids, recipients, lines = columns
        head = _encoder.encode(dict(fields[:split]))[1:-1].decode()
        tail = _encoder.encode(dict(fields[split:]))[1:-1].decode()
        start = f"{{{head}," if head else "{"
        shown = lines if None not in lines else ["null" if line is None else line for line in lines]
        rendered = [
            f'{start}"message_id":"{message_id}","recipient":"{recipient}","line":{line},{tail}}}'
            for message_id, recipient, line in zip(message_ids, recipients, shown, strict=True)
        ]
        return "\n".join(rendered).encode()
    names = tuple(name for name, _ in fields)
    head_values = tuple(value for _, value in fields[:split])
    tail_values = tuple(value for _, value in fields[split:])
    line_type = _line_type((*names[:split], *names_each, *names[split:]))
    structs = [line_type(*head_values, *values, *tail_values) for values in zip(*columns, strict=True)]
    return _encoder.encode_lines(structs)[:-1]  # the logger ends the last line


@functools.lru_cache(maxsize=16)
def _line_type(names: tuple[str, ...]) -> type[msgspec.Struct]:
    """A struct whose fields encode as `names`, in order: msgspec's fastest way to a JSON object."""
    fields = [f"f{i}" for i in range(len(names))]
    return msgspec.defstruct("SubmittedLine", fields, rename=dict(zip(fields, names, strict=True)), gc=False)


def _timestamp(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["ts"] = time.time()
    return event


def _level_and_timestamp(
    _logger: Any, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    event["level"] = method
    event["ts"] = time.time()
    return event
