"""Fair lanes under load: OTP campaigns published while a bulk campaign runs, and how long each took
from its publication to its settlement (Redis's `created_at` and `finished_at`)."""

from __future__ import annotations

import time

import redis

from producer.control import campaign_status
from producer.job_queue import job_broker
from producer.publish import publish_campaign
from producer.spec import build_spec
from schemas.settings import Settings

# OTP campaigns are published at this steady pace: fast enough that at 0 ms latency all of them go
# out while a 200,000-recipient bulk campaign is still being sent (it takes under a second).
OTPS_PER_SECOND = 200


def publish_otps(settings: Settings, client: redis.Redis, count: int) -> list[str]:
    """Publish `count` one-recipient OTP campaigns, one every 1/OTPS_PER_SECOND s."""
    broker = job_broker(client)
    published = []
    started = time.monotonic()
    for n in range(count):
        spec = build_spec(settings=settings, sender="KLRHXA", type="OTP", body=f"Your code is {n:04d}",
                          prefix="+91")  # fmt: skip
        publish_campaign(spec, [(2, f"8{n:09d}")], client=client, broker=broker, settings=settings)
        published.append(spec.campaign_id)
        time.sleep(max(0.0, started + (n + 1) / OTPS_PER_SECOND - time.monotonic()))
    return published


def p99_seconds(client: redis.Redis, campaign_ids: list[str], timeout: float = 600) -> float:
    """Waits for every campaign to settle; the 99th percentile of publication to settlement."""
    deadline = time.monotonic() + timeout
    took = []
    for campaign_id in campaign_ids:
        while (status := campaign_status(client, campaign_id)).finished_at is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"OTP campaign {campaign_id} did not settle within {timeout}s")
            time.sleep(0.01)
        took.append(status.finished_at - (status.created_at or status.finished_at))
    took.sort()
    return took[min(len(took) - 1, int(len(took) * 0.99))]
