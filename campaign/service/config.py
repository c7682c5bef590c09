"""What one `campaign serve` process is told: where it listens, its limits, the delivery-report
receiver's token and field map, and the secret that signs the status pages' sessions."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field

from campaign.service.dlr_config import DlrConfig

MIB = 1 << 20


# The longest request line aiohttp reads (8190 bytes by default): a campaign's options in the query, a
# UCS-2 body percent-encoded (9 bytes a character) among them.
MAX_LINE_BYTES = 64 * 1024


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    processes: int = os.cpu_count() or 1
    # The largest JSON body (a message, a batch of up to 1000): past it, 413 before it is read.
    max_json_bytes: int = 4 * MIB
    # The largest recipients file `POST /v1/campaigns` takes; it is spooled to a temporary file.
    max_upload_bytes: int = 2048 * MIB
    # How long a process trusts an API key it looked up: a revoked key works at most this long more.
    key_cache_s: float = 5.0
    # How long SIGTERM waits for requests in flight before the process exits.
    shutdown_timeout_s: float = 30.0
    # `/v1/dlr/kaleyra`: off until CAMPAIGN_DLR_TOKEN is set (`DlrConfig.from_environ`).
    dlr: DlrConfig = field(default_factory=DlrConfig)
    # Signs the status pages' session cookies: CAMPAIGN_UI_SECRET, else drawn at random once per
    # `campaign serve` (its processes share it; sessions end when it restarts). Never shown.
    ui_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
