"""Account-level faults with real `campaign worker` processes: a wrong API key, then the right one; a
gateway whose port refuses connections for longer than the retries cover, then comes back. Sending is
held, never failed, and resumes by itself: every recipient is submitted once, none failed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from tests.chaos.harness import API_KEY, check_invariants, wait_finished, wait_for, worker_env
from worker.broker import build_broker

pytestmark = pytest.mark.redis

TOTAL, CHUNK = 3000, 100
EXPECTED = {f"+9190000{i:05d}" for i in range(TOTAL)}
# Held jobs look again, and one worker probes the gateway, this often.
PROBE_MS = 300


def publish(client, settings) -> str:
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(TOTAL)]
    publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
    return spec.campaign_id


def test_a_wrong_key_holds_the_campaign_until_workers_restart_with_the_right_one(
    redis_server, redis_client, make_settings, workers, report_trial
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=20, seed=5)) as simulator:
        env = worker_env(redis_server.url, simulator.base_url, chunk_size=CHUNK, hold_probe_ms=PROBE_MS)
        settings = make_settings(simulator.base_url, chunk_size=CHUNK, job_size=500)
        cid = publish(redis_client, settings)
        wrong = [workers(env | {"KALEYRA_API_KEY": "a-rotated-key"}, name=f"wrong{i}") for i in range(2)]

        wait_for(lambda: campaign_status(redis_client, cid).state == "held", timeout=60)
        time.sleep(3 * PROBE_MS / 1000)  # probes come and go: still held, still nothing failed
        held = campaign_status(redis_client, cid)
        for process in wrong:
            process.send_signal(signal.SIGTERM)
        for process in wrong:
            process.wait(timeout=30)
        restarted_at = time.monotonic()
        right = [workers(env, name=f"right{i}") for i in range(2)]
        wait_finished(redis_client, cid, timeout=120)
        recovery_s = time.monotonic() - restarted_at
        verdict = check_invariants(redis_client, cid, simulator, EXPECTED, policy="hold", in_flight=0)
        assert all(process.poll() is None for process in right)

    assert (held.state, held.submitted, held.failed, held.unknown) == ("held", 0, 0, 0)
    assert held.held_reason == "the gateway refused the API key (HTTP 401)"
    assert simulator.record.rejected.get("UNAUTHORIZED", 0) >= 2  # the refused sends and probes
    assert (verdict.status.state, verdict.status.submitted, verdict.status.failed) == ("completed", TOTAL, 0)
    assert verdict.duplicates == 0
    report_trial(
        trial="wrong-key-then-right", policy="hold", seed=5, lost=0, duplicates=0, unknown=0,
        recovery_s=recovery_s,
    )  # fmt: skip


def test_a_gateway_down_past_the_retries_holds_then_every_recipient_goes_once(
    redis_server, redis_client, make_settings, workers, report_trial
):
    # The retries cover about a second of it. CHAOS_OUTAGE_S=300 CHAOS_PROBE_MS=30000 runs the issue's
    # five minutes at the default probe interval (outside CI: it takes six minutes).
    outage_ms = int(float(os.environ.get("CHAOS_OUTAGE_S", "8")) * 1000)
    probe_ms = int(os.environ.get("CHAOS_PROBE_MS", PROBE_MS))
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=50, seed=6)) as simulator:
        env = worker_env(
            redis_server.url, simulator.base_url, chunk_size=CHUNK, hold_probe_ms=probe_ms,
            retry_attempts=3, retry_backoff_ms=100, retry_backoff_max_ms=500,
        )  # fmt: skip
        settings = make_settings(simulator.base_url, chunk_size=CHUNK, job_size=500)
        for i in range(2):
            workers(env, name=f"worker{i}")
        cid = publish(redis_client, settings)
        wait_for(lambda: campaign_status(redis_client, cid).submitted >= 500, timeout=60)
        simulator.set_faults(down_ms=outage_ms)
        went_down = time.monotonic()
        held = wait_for(lambda: (s := campaign_status(redis_client, cid)).state == "held" and s, timeout=30)
        assert time.monotonic() - went_down < outage_ms / 1000, "held only after the outage"
        status = wait_finished(redis_client, cid, timeout=120 + outage_ms / 1000)
        recovered_s = time.monotonic() - went_down - outage_ms / 1000
        verdict = check_invariants(redis_client, cid, simulator, EXPECTED, policy="hold", in_flight=0)

    assert held.failed == 0 and held.held_reason is not None
    assert held.held_reason.startswith("cannot connect to")
    assert (status.state, status.submitted, status.failed, status.unknown) == ("completed", TOTAL, 0, 0)
    assert verdict.duplicates == 0
    report_trial(
        trial=f"gateway-down-{outage_ms // 1000}s", policy="hold", seed=6, lost=0, duplicates=0,
        unknown=status.unknown, recovery_s=recovered_s,
    )  # fmt: skip
