"""A recipients file sent as a request body, or as the `recipients` part of a multipart/form-data body
beside a `spec` part, spooled to a temporary file a chunk at a time (the event loop hands each chunk to a
thread to write), so that memory holds one chunk whatever the file's size."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from campaign.service.errors import ApiError

CHUNK_BYTES = 1 << 20
# Content types of a recipients file, and the name its spool takes: the reader tells JSON lines by it.
SUFFIXES = {
    "text/csv": ".csv",
    "application/csv": ".csv",
    "application/x-ndjson": ".jsonl",
    "application/jsonl": ".jsonl",
    "application/jsonlines": ".jsonl",
    "application/x-jsonlines": ".jsonl",
}
# A recipients part whose content type says nothing (application/octet-stream, none) is told by its name.
EXTENSIONS = {".csv": ".csv", ".jsonl": ".jsonl", ".ndjson": ".jsonl"}
SPEC_PART, RECIPIENTS_PART = "spec", "recipients"
MAX_SPEC_BYTES = 64 << 10
BODY_NAME = "the request body"
_LINE = re.compile(r"\bline (\d+)")


@asynccontextmanager
async def spooled(request: web.Request, limit: int) -> AsyncIterator[str]:
    """The body as a temporary file's path (removed after); 415 for a content type that is not a
    recipients file's, 413 past `limit` bytes."""
    suffix = SUFFIXES.get(request.content_type)
    if suffix is None:
        known = ", ".join(SUFFIXES)
        told = f"send the recipients as one of {known} (or multipart/form-data), not {request.content_type}"
        raise ApiError(415, "unsupported_media_type", told)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the recipients file is over {limit} bytes")
    path = await _spool(request.content.read, suffix, limit)
    try:
        yield path
    finally:
        os.unlink(path)


@asynccontextmanager
async def spooled_parts(
    request: web.Request, limit: int, on_spec: Callable[[bytes], Awaitable[None]]
) -> AsyncIterator[str]:
    """A multipart/form-data body's `spec` part, handed to `on_spec` as it is read (a spec it refuses
    stops the upload before the file is read), then its `recipients` part as a temporary file's path
    (removed after). 400 for a part missing, repeated, unknown or out of that order."""
    if request.content_length is not None and request.content_length > limit + MAX_SPEC_BYTES:
        raise ApiError(413, "payload_too_large", f"the recipients file is over {limit} bytes")
    path, seen = None, set()
    try:
        reader = await _reader_of(request)
        while (part := await _next_part(reader)) is not None:
            if not isinstance(part, BodyPartReader) or part.name not in (SPEC_PART, RECIPIENTS_PART):
                name = getattr(part, "name", None)
                raise _bad_parts(f"a part named {name!r}: send only `{SPEC_PART}` and `{RECIPIENTS_PART}`")
            if part.name in seen:
                raise _bad_parts(f"two parts named {part.name!r}")
            seen.add(part.name)
            if part.name == SPEC_PART:
                await on_spec(await _spec_of(part))
                continue
            if SPEC_PART not in seen:  # checked first, so that a refused spec costs no file on disk
                told = f"no `{SPEC_PART}` part before `{RECIPIENTS_PART}`: send the campaign's options first"
                raise _bad_parts(told)
            path = await _spool(_reading(part), _suffix_of(part), limit)
        missing = [name for name in (SPEC_PART, RECIPIENTS_PART) if name not in seen]
        if missing:
            raise _bad_parts(f"no `{missing[0]}` part: send the campaign's options as `{SPEC_PART}` (JSON) "
                             f"and the file as `{RECIPIENTS_PART}`")  # fmt: skip
        assert path is not None
        yield path
    finally:
        if path is not None:
            os.unlink(path)


async def _reader_of(request: web.Request) -> MultipartReader:
    try:
        return await request.multipart()
    except ValueError as e:  # no boundary
        raise _unreadable(e) from e


async def _next_part(reader: MultipartReader) -> BodyPartReader | MultipartReader | None:
    try:
        return await reader.next()
    except (ValueError, HttpProcessingError) as e:  # a body that is not the multipart it says it is
        raise _unreadable(e) from e


def _unreadable(error: Exception) -> ApiError:
    reason = error.message if isinstance(error, HttpProcessingError) else str(error)
    return _bad_parts(f"the multipart body cannot be read: {reason.strip()}")


def _reading(part: BodyPartReader) -> Callable[[int], Awaitable[bytes]]:
    """The part's `read_chunk`, a body cut short or malformed refused as a 400."""

    async def read(size: int) -> bytes:
        try:
            return await part.read_chunk(size)
        except (ValueError, HttpProcessingError) as e:
            raise _unreadable(e) from e

    return read


async def _spec_of(part: BodyPartReader) -> bytes:
    raw, read = bytearray(), _reading(part)
    while chunk := await read(8192):
        raw += chunk
        if len(raw) > MAX_SPEC_BYTES:
            raise ApiError(413, "payload_too_large", f"the `{SPEC_PART}` part is over {MAX_SPEC_BYTES} bytes")
    return bytes(raw)


def _suffix_of(part: BodyPartReader) -> str:
    content_type = part.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    suffix = SUFFIXES.get(content_type)
    if suffix is None and content_type in ("", "application/octet-stream"):
        suffix = EXTENSIONS.get(os.path.splitext(part.filename or "")[1].lower())
    if suffix is None:
        known = ", ".join(SUFFIXES)
        told = (f"send the `{RECIPIENTS_PART}` part as one of {known}, or named .csv or .jsonl; "
                f"not {content_type or 'untyped'} {part.filename or ''}".rstrip())  # fmt: skip
        raise ApiError(415, "unsupported_media_type", told)
    return suffix


def _bad_parts(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


async def _spool(read: Callable[[int], Awaitable[bytes]], suffix: str, limit: int) -> str:
    """What `read` gives, chunk by chunk, in a new temporary file: its path, for the caller to remove
    (removed here when the read fails)."""
    descriptor, path = tempfile.mkstemp(prefix="campaign-upload-", suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as spool:
            written = 0
            while chunk := await read(CHUNK_BYTES):
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, "payload_too_large", f"the recipients file is over {limit} bytes")
                await asyncio.to_thread(spool.write, chunk)
    except BaseException:
        os.unlink(path)
        raise
    return path


def as_sent(text: str, path: str) -> str:
    """A refusal's message with the spool's name replaced by what the client sent."""
    return text.replace(f"recipients file {path!r}", BODY_NAME).replace(repr(path), BODY_NAME)


def line_of(text: str) -> int | None:
    """The line a refusal names, if it names one."""
    found = _LINE.search(text)
    return int(found.group(1)) if found else None
