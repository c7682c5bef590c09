"""One account limit shared by four real worker processes: the gateway sees the limit, no more,
and a new limit set while the campaign runs is followed. Counts per window, from the gateway's record.
"""

from __future__ import annotations

import time

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status, set_account_rate_limit
from producer.publish import publish_campaign
from producer.spec import build_spec
from tests.chaos.harness import API_KEY, wait_for, worker_env
from worker.broker import build_broker

pytestmark = pytest.mark.redis

LIMIT, LOWER = 6000, 3000  # messages per second, well under what four workers can send here
MEASURED_S, AFTER_CHANGE_S = 20, 8
WORKERS, THREADS = 4, 2


def messages_between(arrivals: list[tuple[float, int]], start: float, end: float) -> int:
    return sum(n for at, n in arrivals if start <= at < end)


def busiest_window(
    arrivals: list[tuple[float, int]], start: float, end: float, seconds: float = 2.0
) -> float:
    """The most messages a second in any window of `seconds` starting at an arrival in [start, end - seconds).

    Two seconds, not one: arrivals are stamped by the simulator's event loop, and a loop held up for a
    fifth of a second on a busy machine stamps that fifth's requests into the next second, which then
    reads 20% over a limit the workers kept (CI saw 7,200 against 6,000 once, the average on the limit).
    A burst the limiter let through, as every worker starting each second at once, still shows."""
    windows = (
        messages_between(arrivals, at, at + seconds) for at, _ in arrivals if start <= at < end - seconds
    )
    return max(windows) / seconds


def test_four_workers_share_one_limit_and_follow_a_new_one(
    redis_server, redis_client, make_settings, workers, report_trial
):
    total = int(LIMIT * (MEASURED_S + 4) + LOWER * (AFTER_CHANGE_S + 4))
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=20, seed=8)) as simulator:
        env = worker_env(redis_server.url, simulator.base_url)
        settings = make_settings(simulator.base_url, sid="HXCHAOS")
        set_account_rate_limit(redis_client, "HXCHAOS", str(LIMIT))
        for index in range(WORKERS):
            workers(env, threads=THREADS, name=f"worker{index}")
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
        rows = ((i + 2, f"9{i:09d}") for i in range(total))
        publish_campaign(spec, rows, client=redis_client, broker=build_broker(settings, redis_client),
                         settings=settings)  # fmt: skip
        arrivals = simulator.record.arrivals
        wait_for(lambda: arrivals, timeout=60)
        start = arrivals[0][0] + 2  # once every worker has its jobs
        time.sleep(max(0.0, start + MEASURED_S - time.monotonic()))
        set_account_rate_limit(redis_client, "HXCHAOS", str(LOWER))
        changed = time.monotonic()
        time.sleep(AFTER_CHANGE_S)
        state = campaign_status(redis_client, spec.campaign_id).state
        seen = list(arrivals)

    rate = messages_between(seen, start, start + MEASURED_S) / MEASURED_S
    peak = busiest_window(seen, start, start + MEASURED_S)
    # The new limit: bulk books at most 100 ms ahead, so half a second on it holds.
    settled_in = 0.5
    lower_rate = messages_between(seen, changed + settled_in, changed + AFTER_CHANGE_S) / (
        AFTER_CHANGE_S - settled_in
    )
    lower_peak = busiest_window(seen, changed + settled_in, changed + AFTER_CHANGE_S)
    report_trial(trial="rate-limit", policy=f"{LIMIT}/s", seed=8, rate=rate, peak_second=peak,
                 after_change=lower_rate, peak_after=lower_peak)  # fmt: skip
    assert state == "running"  # the campaign outlasted the measurement: the limit, not the work, set the pace
    assert LIMIT * 0.95 <= rate <= LIMIT * 1.05
    assert peak <= LIMIT * 1.15
    assert LOWER * 0.95 <= lower_rate <= LOWER * 1.05
    assert lower_peak <= LOWER * 1.15
