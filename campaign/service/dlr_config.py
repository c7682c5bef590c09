"""The delivery-report receiver's configuration: its shared secret (`CAMPAIGN_DLR_TOKEN`; unset, the
receiver is off) and the names the callback profile's template gives the fields it reads
(`CAMPAIGN_DLR_FIELDS`), read from the environment once, at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.errors import SettingsError

DLR_PATH = "/v1/dlr/kaleyra"
TOKEN_HEADER = "X-Dlr-Token"
TOKEN_QUERY = "token"
# What the receiver reads -> the field it is read from, by default Kaleyra's own variable names.
# `description` is read for the trace when `status_trace` is absent or empty.
DEFAULT_FIELDS: Mapping[str, str] = {
    "id": "id",
    "status": "status",
    "status_trace": "status_trace",
    "description": "description",
    "timestamp": "timestamp",
}
_EXAMPLE = "id=msgid,status=stat,status_trace=err,timestamp=done_at"


@dataclass(frozen=True, kw_only=True)
class DlrConfig:
    token: str | None = field(default=None, repr=False)  # None: the receiver is off (404); never shown
    fields: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_FIELDS))

    @property
    def on(self) -> bool:
        return self.token is not None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DlrConfig:
        env = os.environ if environ is None else environ
        token = env.get("CAMPAIGN_DLR_TOKEN", "").strip() or None
        return cls(token=token, fields=parse_fields(env.get("CAMPAIGN_DLR_FIELDS", "")))


def parse_fields(text: str) -> dict[str, str]:
    """`ours=theirs,...` over the defaults: `id=msgid,status=stat`; SettingsError on a bad value."""
    fields = dict(DEFAULT_FIELDS)
    seen: set[str] = set()
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        ours, equals, theirs = (part.strip() for part in entry.partition("="))
        if not equals or not theirs:
            raise SettingsError(f"CAMPAIGN_DLR_FIELDS: {entry!r} is not NAME=FIELD; write it as {_EXAMPLE}")
        if ours not in DEFAULT_FIELDS:
            known = ", ".join(DEFAULT_FIELDS)
            raise SettingsError(f"CAMPAIGN_DLR_FIELDS: {ours!r} is not one of {known} (in {entry!r})")
        if ours in seen:
            raise SettingsError(f"CAMPAIGN_DLR_FIELDS names {ours!r} twice")
        if theirs == TOKEN_QUERY:
            raise SettingsError(f"CAMPAIGN_DLR_FIELDS: {TOKEN_QUERY!r} is the token's query parameter")
        seen.add(ours)
        fields[ours] = theirs
    return fields
