"""The status pages' sign-in: a session cookie signed with HMAC-SHA256 under the server's secret, naming
the API key it was opened with by the key's SHA-256 (never the key), and the CSRF token of its forms."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Mapping

import msgspec

from schemas.errors import SettingsError

COOKIE = "campaign_session"
LIFETIME_S = 12 * 3600
SECRET_VARIABLE = "CAMPAIGN_UI_SECRET"
MIN_SECRET_CHARS = 32


class Session(msgspec.Struct, frozen=True, kw_only=True, array_like=True):
    """What the cookie holds: the key's id, name and SHA-256 (to see it is not revoked), an id of this
    session (the CSRF token derives from it), and when it ends (Unix seconds)."""

    key_id: str
    key_name: str
    key_digest: str
    session_id: str
    expires_at: float


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Session).decode


def secret_from_environ(environ: Mapping[str, str] | None = None) -> bytes | None:
    """CAMPAIGN_UI_SECRET as bytes; None when unset (the service then draws a random one at start, and
    sessions end when it restarts). SettingsError for one too short to be a secret."""
    env = os.environ if environ is None else environ
    value = env.get(SECRET_VARIABLE, "").strip()
    if not value:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise SettingsError(
            f"{SECRET_VARIABLE} has {len(value)} characters; use at least {MIN_SECRET_CHARS} random ones "
            "(`python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return value.encode()


def random_secret() -> bytes:
    return secrets.token_bytes(32)


def open_session(secret: bytes, *, key_id: str, key_name: str, key_digest: str) -> tuple[Session, str]:
    """A new session for the key and the cookie value that carries it."""
    session = Session(
        key_id=key_id,
        key_name=key_name,
        key_digest=key_digest,
        session_id=secrets.token_urlsafe(16),
        expires_at=time.time() + LIFETIME_S,
    )
    payload = _b64(_encode(session))
    return session, f"{payload}.{_b64(_sign(secret, b'session:' + payload.encode()))}"


def read_session(secret: bytes, cookie: str | None) -> Session | None:
    """The session a cookie carries when its signature holds and it has not ended; else None."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, signature = cookie.split(".")
    expected = _b64(_sign(secret, b"session:" + payload.encode()))
    if not hmac.compare_digest(_bytes(signature), expected.encode()):
        return None
    try:
        session = _decode(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, msgspec.DecodeError):  # signed by us, so only an older format gets here
        return None
    return session if session.expires_at > time.time() else None


def csrf_token(secret: bytes, session: Session) -> str:
    """The token a signed-in page's forms carry: tied to the session, unknown to another site."""
    return _b64(_sign(secret, b"csrf:" + session.session_id.encode()))


def csrf_holds(secret: bytes, session: Session, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(_bytes(str(token)), csrf_token(secret, session).encode())


def _bytes(given: str) -> bytes:
    """What a browser sent, as bytes to compare: any text (aiohttp keeps undecodable bytes as surrogates)
    compares, never raises."""
    return given.encode("utf-8", "backslashreplace")


def _sign(secret: bytes, message: bytes) -> bytes:
    return hmac.new(secret, message, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
