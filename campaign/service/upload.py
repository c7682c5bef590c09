"""A recipients file sent as a request body, spooled to a temporary file a chunk at a time (the event
loop hands each chunk to a thread to write), so that memory holds one chunk whatever the file's size."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp import web

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
BODY_NAME = "the request body"
_LINE = re.compile(r"\bline (\d+)")


@asynccontextmanager
async def spooled(request: web.Request, limit: int) -> AsyncIterator[str]:
    """The body as a temporary file's path (removed after); 415 for a content type that is not a
    recipients file's, 413 past `limit` bytes."""
    suffix = SUFFIXES.get(request.content_type)
    if suffix is None:
        known = ", ".join(SUFFIXES)
        told = f"send the recipients as one of {known}, not {request.content_type}"
        raise ApiError(415, "unsupported_media_type", told)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"the recipients file is over {limit} bytes")
    descriptor, path = tempfile.mkstemp(prefix="campaign-upload-", suffix=suffix)
    try:
        with os.fdopen(descriptor, "wb") as spool:
            written = 0
            while chunk := await request.content.read(CHUNK_BYTES):
                written += len(chunk)
                if written > limit:
                    raise ApiError(413, "payload_too_large", f"the recipients file is over {limit} bytes")
                await asyncio.to_thread(spool.write, chunk)
        yield path
    finally:
        os.unlink(path)


def as_sent(text: str, path: str) -> str:
    """A refusal's message with the spool's name replaced by what the client sent."""
    return text.replace(f"recipients file {path!r}", BODY_NAME).replace(repr(path), BODY_NAME)


def line_of(text: str) -> int | None:
    """The line a refusal names, if it names one."""
    found = _LINE.search(text)
    return int(found.group(1)) if found else None
