"""Redis is killed and restarted (AOF on) under a running worker; the worker rides it out."""

from __future__ import annotations

import time

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from tests.chaos.harness import API_KEY, check_invariants, wait_finished, wait_for, worker_env
from worker.broker import build_broker

pytestmark = pytest.mark.redis

CHUNK = 100
AOF_FSYNC_S = 1.5  # `appendfsync everysec`: what was written a second ago is on disk


def publish(client, settings, total: int):
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(total)]
    publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
    return spec.campaign_id, {f"+9190000{i:05d}" for i in range(total)}


def restart(redis_server, outage_s: float = 2) -> None:
    time.sleep(AOF_FSYNC_S)
    redis_server.kill()
    time.sleep(outage_s)
    redis_server.start()


# 20 s outlasts dramatiq's heartbeat timeout (15 s): the worker's own broker id is judged dead.
@pytest.mark.parametrize("outage_s", [2, 20])
def test_a_redis_restart_mid_campaign_loses_and_duplicates_nothing(
    outage_s, redis_server, redis_client, make_settings, workers, report_trial
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=100, seed=2)) as simulator:
        env = worker_env(redis_server.url, simulator.base_url, chunk_size=CHUNK, job_min_backoff_ms=200)
        settings = make_settings(simulator.base_url, chunk_size=CHUNK)
        cid, expected = publish(redis_client, settings, 3000)
        worker = workers(env, threads=2)
        wait_for(lambda: campaign_status(redis_client, cid).submitted >= 600, timeout=60)
        restarted_at = time.monotonic()
        restart(redis_server, outage_s)
        wait_finished(redis_client, cid)
        assert worker.poll() is None, "the worker died with Redis"
        verdict = check_invariants(redis_client, cid, simulator, expected, policy="hold", in_flight=2 * CHUNK)

    report_trial(
        trial=f"redis-down-{outage_s}s", policy="hold", seed=2, lost=verdict.lost,
        duplicates=verdict.duplicates,
        unknown=verdict.status.unknown, lost_worker=verdict.lost_worker, resent=verdict.status.resent,
        recovery_s=time.monotonic() - restarted_at,
    )  # fmt: skip


def test_a_delayed_retry_pending_across_a_redis_restart_still_runs(
    redis_server, redis_client, make_settings, workers
):
    """The gateway answers E403 until tenacity gives up; dramatiq's retry waits in the delay queue while
    Redis restarts; once the gateway recovers, the retry sends the job."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=3)) as simulator:
        env = worker_env(
            redis_server.url, simulator.base_url, chunk_size=CHUNK, retry_attempts=1, job_min_backoff_ms=4000
        )
        settings = make_settings(simulator.base_url, chunk_size=CHUNK)
        cid, expected = publish(redis_client, settings, 500)
        worker = workers(env, threads=1)
        delayed = "dramatiq:campaigns.DQ.msgs"  # dramatiq's Redis broker keeps delayed messages here
        wait_for(lambda: redis_client.hlen(delayed) > 0, timeout=60)
        pending = campaign_status(redis_client, cid)
        restart(redis_server)
        assert redis_client.hlen(delayed) > 0, "the delayed retry did not survive the restart"
        simulator.set_faults(e403_rate=0.0)
        status = wait_finished(redis_client, cid)
        assert worker.poll() is None, "the worker died with Redis"
        check_invariants(redis_client, cid, simulator, expected, policy="hold", in_flight=0)

    assert (pending.submitted, pending.pending) == (0, 500)
    assert status.submitted == 500
    assert simulator.record.e403_injected >= 1  # what was sent, was sent by the retry
