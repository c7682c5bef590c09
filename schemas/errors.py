"""The project's exception tree. Retry decisions hang on transient vs permanent."""

from __future__ import annotations


class CampaignError(Exception):
    """Root of every error this project raises on purpose."""


class InputError(CampaignError):
    """Input refused before anything was published: the CLI exits 2 with this one-line message."""


class SpecError(InputError):
    """A campaign option is invalid."""


class RecipientsError(InputError):
    """The recipients file cannot be read or has the wrong shape."""


class SettingsError(InputError):
    """An environment variable holds a value we cannot use."""


class UnknownCampaignError(InputError):
    """No campaign with that id exists."""


class UnknownMessageError(InputError):
    """No single message with that id: never queued, malformed, or settled longer ago than retention."""


class IdempotencyConflict(InputError):
    """An idempotency key used in the last 24 hours for another message: nothing was queued."""

    def __init__(self, reason: str, *, message_id: str) -> None:
        super().__init__(reason)
        self.message_id = message_id  # the message the key's first request queued


class GatewayError(CampaignError):
    """Kaleyra (or the simulator) refused or failed a request.

    `code` is Kaleyra's error code when the reply carried one (``E403``), else a
    synthetic one naming the transport failure (``HTTP503``, ``CONNECT``).
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class TransientGatewayError(GatewayError):
    """Nothing was sent (E403, 429, 502, 503, connection refused): safe to retry."""


class GatewayUnreachable(TransientGatewayError):
    """No connection to the gateway, or its front answering 502/503: nothing was sent. Retried a
    few times; past that, an account-level fault that holds sending."""


class PermanentGatewayError(GatewayError):
    """The request is wrong and will stay wrong: never retried."""


class AccountFault(GatewayError):
    """The gateway refuses the account's API key (HTTP 401 or 403), or cannot be reached for longer
    than the retries cover: no request of the account can succeed, so sending is held, not failed."""


class AmbiguousGatewayError(GatewayError):
    """The request may or may not have been sent (timeout, reset, 504): not retried blindly."""
