"""How the simulator sends delivery reports: a callback profile's URL, method, body template and
headers, and the mix of outcomes, delays, duplicates and losses it draws from."""

from __future__ import annotations

import math
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from ops.simulator.delivery.statuses import DEFAULT_OUTCOMES, TRACE_STATUS
from ops.simulator.faults import check_ms, check_rate
from schemas.errors import InputError

TOKEN_HEADER = "X-Dlr-Token"

# Kaleyra's dynamic variables a template may name, as `{variable}` (str.format syntax).
VARIABLES = ("id", "recipient", "sender", "status", "status_trace", "description", "timestamp")
# DESIGN's default fields: `id` (Kaleyra's message id), `status`, `status_trace`, `timestamp`.
DEFAULT_TEMPLATE: dict[str, str] = {
    "id": "{id}",
    "status": "{status}",
    "status_trace": "{status_trace}",
    "timestamp": "{timestamp}",
}
MAX_CONCURRENCY = 1000


class ReportsConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Also the body of `PUT /_simulator/reports/config` (absent fields take these defaults).

    `url` None: outcomes are still decided, for the status query, and no report is sent.
    `template` maps each field sent to a text naming variables, e.g. `{"msgid": "{id}",
    "state": "{status}/{status_trace}", "source": "kaleyra"}`.
    """

    url: str | None = None
    method: Literal["GET", "POST"] = "POST"  # GET: the fields as query parameters
    body: Literal["json", "form"] = "json"  # POST's body
    template: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_TEMPLATE))
    token: str | None = None  # sent as header X-Dlr-Token
    headers: dict[str, str] = {}  # any other static header of the profile
    median_delay_ms: float = 2000.0  # accepted -> final status: lognormal with this median
    delay_sigma: float = 1.0  # the lognormal's shape: 0 makes every delay the median
    outcomes: dict[str, float] = msgspec.field(default_factory=lambda: dict(DEFAULT_OUTCOMES))
    sent_rate: float = 0.0  # share of messages with a "Sent" report before the final one
    out_of_order_rate: float = 0.0  # share of those whose "Sent" report goes after the final one
    duplicate_rate: float = 0.0  # share whose final report is sent twice
    drop_rate: float = 0.0  # share whose final report is never sent (the status query knows it)
    max_attempts: int = 5  # per report; an answer other than 2xx, or none, is retried
    retry_ms: float = 1000.0  # back-off before the second attempt, doubled for each after
    max_retry_ms: float = 60_000.0
    timeout_ms: float = 10_000.0  # per attempt
    concurrency: int = 32  # requests at once, on one keep-alive session
    seed: int | None = None

    def __post_init__(self) -> None:
        check_url(self.url)
        check_template(self.template)
        check_outcomes(self.outcomes)
        for name in ("sent_rate", "out_of_order_rate", "duplicate_rate", "drop_rate"):
            check_rate(name, getattr(self, name))
        for name in ("median_delay_ms", "retry_ms", "max_retry_ms", "timeout_ms"):
            check_ms(name, getattr(self, name))
        if not (math.isfinite(self.delay_sigma) and self.delay_sigma >= 0.0):
            raise InputError(f"delay_sigma={self.delay_sigma!r} must be a finite number, 0 or more")
        if self.max_attempts < 1:
            raise InputError(f"max_attempts={self.max_attempts!r} must be 1 or more")
        if not 1 <= self.concurrency <= MAX_CONCURRENCY:
            raise InputError(f"concurrency={self.concurrency!r} must be between 1 and {MAX_CONCURRENCY}")


def check_url(url: str | None) -> None:
    if url is None:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InputError(f"url={url!r} must be an http:// or https:// URL with a host")


def check_template(template: dict[str, str]) -> None:
    if not template:
        raise InputError('template must name at least one field, e.g. {"id": "{id}"}')
    sample = dict.fromkeys(VARIABLES, "")
    for name, text in template.items():
        try:
            text.format_map(sample)
        except KeyError as error:
            raise InputError(
                f"template field {name!r} names the unknown variable {error.args[0]!r}; "
                f"known: {', '.join(VARIABLES)}"
            ) from error
        except (ValueError, IndexError) as error:
            raise InputError(f"template field {name!r}: {text!r} is not a format text ({error})") from error


def check_outcomes(outcomes: dict[str, float]) -> None:
    unknown = sorted(set(outcomes) - set(TRACE_STATUS))
    if unknown:
        raise InputError(f"outcomes names unknown traces {unknown}; known: {', '.join(TRACE_STATUS)}")
    if any(not (math.isfinite(weight) and weight >= 0.0) for weight in outcomes.values()):
        raise InputError(f"outcomes={outcomes!r}: every weight must be a finite number, 0 or more")
    if not sum(outcomes.values()) > 0.0:
        raise InputError(f"outcomes={outcomes!r}: at least one weight must be above 0")


CONFIG_DECODER = msgspec.json.Decoder(ReportsConfig | None)
