"""Errors as the API answers them, `{"error": {"code", "message", "field"?}}`, and the middleware that
turns every refusal (and, logged, every bug) into one."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable

import msgspec
import redis
import structlog
from aiohttp import web

from schemas.errors import InputError, UnknownCampaignError, UnknownMessageError

_log = structlog.get_logger("campaign.service")
# msgspec names where a value is wrong as a path (`$.messages[3].to`) or, for an unknown or a missing
# field, in backquotes before `at $`.
_AT_PATH = re.compile(r" - at `\$\.?(?P<path>[^`]*)`$")
_NAMED_FIELD = re.compile(r"(?:unknown|required) field `(?P<name>[^`]+)`")


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    code: str
    message: str
    field: str | None = None
    line: int | None = None  # a refused recipients file: the line of the refusal


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail


class ApiError(Exception):
    """A refusal to answer with `status` and an `ErrorBody`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        line: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.field, self.line, self.headers = field, line, headers

    def detail(self) -> ErrorDetail:
        return ErrorDetail(code=self.code, message=self.message, field=self.field, line=self.line)

    def response(self) -> web.Response:
        return json_response(ErrorBody(self.detail()), status=self.status, headers=self.headers)


def json_response(value: object, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=msgspec.json.encode(value), status=status, headers=headers, content_type="application/json"
    )


def invalid(error: msgspec.ValidationError | msgspec.DecodeError, prefix: str = "") -> ApiError:
    """A body msgspec refused, as a 400 naming the field (`messages[3].to`) where msgspec does."""
    text = str(error)
    if isinstance(error, msgspec.ValidationError):
        return ApiError(400, "invalid_request", text, field=field_of(text, prefix))
    return ApiError(400, "invalid_json", f"the body is not valid JSON: {text}")


def field_of(text: str, prefix: str = "") -> str | None:
    """The field a msgspec validation message names: its path, and an unknown or missing one's name."""
    at = _AT_PATH.search(text)
    path = at.group("path") if at else ""
    named = _NAMED_FIELD.search(text)
    if named:
        path = f"{path}.{named.group('name')}" if path else named.group("name")
    path = f"{prefix}.{path}" if prefix and path else (path or prefix)
    return path or None


def refused(error: InputError, fields: Iterable[str] = ()) -> ApiError:
    """An input the producer refused: 404 for an unknown id, else 400, naming the field among `fields`
    that its message starts with (`type 'XYZ' is not one of ...`, `template-id ...`)."""
    text = str(error)
    if isinstance(error, UnknownCampaignError | UnknownMessageError):
        return ApiError(404, "not_found", text)
    first = text.split(" ", 1)[0].replace("-", "_")
    return ApiError(400, "invalid_request", text, field=first if first in fields else None)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer but a success is an `ErrorBody`: aiohttp's own (404, 405), ours, Redis being out of
    reach (503), and a bug (500, logged with its traceback, never shown)."""
    try:
        return await handler(request)
    except ApiError as e:
        return e.response()
    except web.HTTPException as e:
        if e.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(e.status, "http")
        return ApiError(e.status, code, e.reason, headers=_kept_headers(e)).response()
    except redis.RedisError as e:
        _log.warning("http.redis_unavailable", path=request.path, error=str(e))
        return ApiError(503, "unavailable", "Redis cannot be reached; try again shortly").response()
    except Exception:
        _log.exception("http.unhandled", method=request.method, path=request.path)
        return ApiError(500, "internal_error", "an internal error; it was logged").response()


def _kept_headers(error: web.HTTPException) -> dict[str, str]:
    allow = error.headers.get("Allow")
    return {"Allow": allow} if allow else {}
