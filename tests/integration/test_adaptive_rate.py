"""AIMD against the simulator: an E403 burst lowers the rate the gateway sees; it recovers when they stop."""

from __future__ import annotations

import time

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import set_account_rate_limit
from redis_model import keys
from tests.integration.test_campaign_flow import API_KEY, publish_numbers, wait_for

LIMIT = 4000
SID = "HXTEST0000IN"  # make_settings' account


def rate(arrivals: list[tuple[float, int]], start: float, end: float) -> float:
    return sum(n for at, n in arrivals if start <= at < end) / (end - start)


def test_an_e403_burst_lowers_the_rate_and_it_recovers_when_they_stop(
    backend, start_worker, make_settings, monkeypatch
):
    monkeypatch.setattr("worker.rate_limit.RECOVERY_S", 3.0)
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=10, seed=3)) as simulator:
        settings = make_settings(simulator.base_url, retry_backoff_ms=50, retry_backoff_max_ms=200)
        set_account_rate_limit(backend.client, SID, str(LIMIT))
        broker = start_worker(settings, threads=4)
        publish_numbers(backend, broker, settings, 60_000)
        arrivals = simulator.record.arrivals
        wait_for(lambda: arrivals and time.monotonic() - arrivals[0][0] > 2.5)
        before = rate(arrivals, time.monotonic() - 2, time.monotonic())

        simulator.set_faults(e403_rate=0.5)
        wait_for(lambda: backend.client.hexists(keys.account_rate(SID), "pace"))
        simulator.set_faults(e403_rate=0.0)
        cut_at = time.monotonic()
        time.sleep(1.0)
        during = rate(arrivals, cut_at, cut_at + 1.0)
        wait_for(lambda: not backend.client.hexists(keys.account_rate(SID), "pace"), timeout=20)
        recovered_at = time.monotonic()
        time.sleep(1.5)
        after = rate(arrivals, recovered_at, recovered_at + 1.5)

    assert before > 0.9 * LIMIT
    assert during < 0.7 * LIMIT  # halved, and growing back from there
    assert after > 0.9 * LIMIT
