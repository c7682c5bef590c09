"""The chaos harness: worker environments, waiting, and the Jepsen-style invariant check run after
every trial."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
import redis

from ops.simulator import RunningSimulator
from producer.control import CampaignStatus, campaign_status
from redis_model import keys
from redis_model.outcomes import chunk_outcomes
from schemas.campaign import Job, Recipient

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
API_KEY = "chaos-key"
_job_decoder = msgspec.msgpack.Decoder(Job)


def worker_env(redis_url: str, base_url: str, **settings: str | int) -> dict[str, str]:
    """The environment of a `campaign worker` against `redis_url` and the simulator at `base_url`."""
    env = os.environ | {
        "REDIS_URL": redis_url,
        "KALEYRA_API_KEY": API_KEY,
        "KALEYRA_SID": "HXCHAOS",
        "KALEYRA_BASE_URL": base_url,
    }
    return env | {f"CAMPAIGN_{name.upper()}": str(value) for name, value in settings.items()}


def kill9(process: subprocess.Popen) -> float:
    """SIGKILL the worker's whole process group (dramatiq's parent and its children); the monotonic time."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return time.monotonic()


def wait_for(condition: Callable[[], object], timeout: float, interval: float = 0.05):
    """Poll until `condition()` is truthy, riding out a Redis that is down for a moment."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if result := condition():
                return result
        except redis.ConnectionError:
            pass
        assert time.monotonic() < deadline, f"timed out after {timeout}s"
        time.sleep(interval)


def wait_finished(client: redis.Redis, campaign_id: str, timeout: float = 120) -> CampaignStatus:
    """Until nothing is pending (completed, or cancelled and settled)."""
    return wait_for(
        lambda: (s := campaign_status(client, campaign_id)).pending == 0 and s.state != "running" and s,
        timeout=timeout,
        interval=0.1,
    )


@dataclass(frozen=True)
class Verdict:
    """What one trial did to its recipients, from the gateway's record, `campaign status` and the ledger."""

    lost: int  # never sent and not reported unknown, failed or cancelled: lost silently
    duplicates: int  # extra deliveries of a number
    lost_worker: int  # recipients held unknown because their worker vanished mid-send
    status: CampaignStatus


def check_invariants(
    client: redis.Redis,
    campaign_id: str,
    simulator: RunningSimulator,
    expected: set[str],
    *,
    policy: str,
    in_flight: int,
    resent_by_failover: int = 0,
) -> Verdict:
    """Jepsen-style, after a trial: the counts add up and match the ledger's records, every message id
    the ledger holds is one the gateway issued for that very number, nothing is lost silently, and
    duplicates stay within what the policy allows. `in_flight` bounds what a dead worker had mid-send;
    `resent_by_failover` what a Redis failover may send again under `hold` (its lost writes).
    """
    status = campaign_status(client, campaign_id)
    assert status.pending == 0, status
    assert (
        status.submitted + status.failed + status.unknown + status.cancelled == status.total == len(expected)
    )
    sent = simulator.record.counts_by_number()
    assert set(sent) <= expected, "the gateway got a number that was never published"
    issued = {message.message_id: message.to for message in simulator.record.messages}

    counted = Counter[str]()
    lost_worker = 0
    jobs: dict[int, list[Recipient]] = {}
    for (job, offset), outcome in chunk_outcomes(client, campaign_id):
        assert not outcome.republished  # no trial resends on purpose
        counted.update(outcome.counts())
        if outcome.code == "WORKER_LOST":
            lost_worker += outcome.size
        if job not in jobs:
            jobs[job] = _job_decoder.decode(client.hget(keys.jobs(campaign_id), str(job))).recipients
        chunk = jobs[job][offset : offset + outcome.size]
        for recipient, message_id in zip(
            chunk, outcome.full_message_ids() or [""] * outcome.size, strict=True
        ):
            assert not message_id or issued[message_id] == recipient.to, "a message id for another number"
    for name in ("submitted", "failed", "unknown", "cancelled"):
        assert counted[name] == getattr(status, name), f"{name}: the counter drifted from the ledger"

    unsent = len(expected - set(sent))
    lost = max(0, unsent - (status.unknown + status.failed + status.cancelled))
    duplicates = sum(count - 1 for count in sent.values())
    assert lost == 0, f"{lost} recipients lost silently"
    if policy == "hold":
        assert duplicates <= resent_by_failover, f"{duplicates} duplicates under hold"
        assert lost_worker <= in_flight
    else:
        assert lost_worker == 0
        assert duplicates <= status.resent <= in_flight
    return Verdict(lost=lost, duplicates=duplicates, lost_worker=lost_worker, status=status)
