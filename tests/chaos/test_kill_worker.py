"""kill -9 a real worker at chosen and at random moments, SIGTERM another; a second worker finishes the
campaign. After each trial the invariants of `check_invariants`: nothing lost silently, no duplicate
under `hold`, under `resend` at most the chunks in flight, counters equal to the ledger's records.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Callable

import pytest

from ops.simulator import RunningSimulator, SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import keys
from tests.chaos.harness import API_KEY, check_invariants, kill9, wait_finished, wait_for, worker_env
from worker.broker import build_broker

pytestmark = pytest.mark.redis

TOTAL, CHUNK, THREADS = 2000, 100, 2
IN_FLIGHT = THREADS * CHUNK  # what one dead worker can have had mid-send
HTTP_TIMEOUT_MS = 1500


def before_processing(sim: RunningSimulator) -> bool:
    """A request is in the simulator but not processed yet (its latency): the worker holds a claim."""
    r = sim.record
    return r.requests - r.accepted_requests - r.e403_injected - sum(r.rejected.values()) > 0


# moment -> (the gateway's faults, the condition the kill waits for besides some progress)
MOMENTS: dict[str, tuple[dict[str, float], Callable[[RunningSimulator], bool]]] = {
    # Claimed, request on the wire, the gateway has not processed it yet.
    "before_post": ({"latency_ms": 300}, before_processing),
    # The gateway accepted the chunk; its reply is late, so the ledger has not heard of it.
    "after_post": ({"latency_ms": 20, "slow_reply_rate": 0.5, "slow_reply_ms": 1000},
                   lambda sim: sim.record.replies_held > 0),
    # Every request answered E403: the worker spends its time in tenacity's back-off.
    # (Latency keeps the campaign running while the test turns E403s on.)
    "backoff": ({"latency_ms": 100}, lambda sim: True),
    # Mixed faults (latency, E403s, replies slower than the timeout); the kill comes at a random count.
    "random": ({"latency_ms": 30, "e403_rate": 0.15, "slow_reply_rate": 0.03, "slow_reply_ms": 2500},
               lambda sim: True),
}  # fmt: skip

TRIALS = [
    *[
        (moment, policy, 0)
        for moment in ("before_post", "after_post", "backoff")
        for policy in ("hold", "resend")
    ],
    # Two seeds: the fixed moments above cover each kill point; these add mixed faults at a random count
    # (a third seed cost the suite 35 s).
    *[("random", policy, seed) for seed in (1, 2) for policy in ("hold", "resend")],
]


def start_campaign(client, simulator, make_settings, policy: str):
    settings = make_settings(simulator.base_url, chunk_size=CHUNK)
    spec = build_spec(
        settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", on_unknown=policy
    )
    rows = [(i + 2, f"90000{i:05d}") for i in range(TOTAL)]
    publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
    return spec.campaign_id, {f"+9190000{i:05d}" for i in range(TOTAL)}


def chaos_env(redis_url: str, simulator: RunningSimulator) -> dict[str, str]:
    return worker_env(
        redis_url, simulator.base_url, chunk_size=CHUNK, http_timeout_ms=HTTP_TIMEOUT_MS,
        retry_backoff_ms=300, retry_backoff_max_ms=1000, job_min_backoff_ms=200,
        heartbeat_timeout_ms=3000, maintenance_chance=500_000,
    )  # fmt: skip


@pytest.mark.parametrize(("moment", "policy", "seed"), TRIALS)
def test_a_worker_killed_at_any_moment_loses_nothing_silently(
    moment, policy, seed, redis_server, redis_client, make_settings, workers, report_trial
):
    faults, ready = MOMENTS[moment]
    kill_after = random.Random(seed).randint(100, TOTAL - 300) if moment == "random" else 100
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=seed, **faults)) as simulator:
        env = chaos_env(redis_server.url, simulator)
        first = workers(env, threads=THREADS, name="first")
        cid, expected = start_campaign(redis_client, simulator, make_settings, policy)
        if moment == "backoff":  # some progress first, then the gateway turns to E403s
            simulator.set_faults(e403_rate=0.0)
            wait_for(lambda: campaign_status(redis_client, cid).submitted >= kill_after, timeout=60)
            simulator.set_faults(e403_rate=1.0, latency_ms=0)
            before = simulator.record.e403_injected
            wait_for(lambda: simulator.record.e403_injected >= before + 2, timeout=60)
            # Every thread is between attempts: no claim is held while nothing is being sent.
            wait_for(lambda: redis_client.hlen(keys.claims(cid)) == 0, timeout=60, interval=0.001)
        else:
            wait_for(lambda: campaign_status(redis_client, cid).submitted >= kill_after, timeout=60)
            wait_for(lambda: ready(simulator), timeout=60, interval=0.005)
        killed_at = kill9(first)
        if moment == "backoff":
            simulator.set_faults(e403_rate=0.0, latency_ms=100)
        workers(env, threads=THREADS, name="second")
        status = wait_finished(redis_client, cid)
        recovery = time.monotonic() - killed_at
        verdict = check_invariants(redis_client, cid, simulator, expected, policy=policy, in_flight=IN_FLIGHT)

    report_trial(
        trial=f"kill9:{moment}", policy=policy, seed=seed, lost=verdict.lost, duplicates=verdict.duplicates,
        unknown=status.unknown, lost_worker=verdict.lost_worker, resent=status.resent, recovery_s=recovery,
    )  # fmt: skip
    if moment == "backoff":
        assert verdict.lost_worker == 0 and status.resent == 0  # its claims were given back: nothing unknown


def test_sigterm_finishes_the_chunks_in_flight_and_hands_the_rest_over(
    redis_server, redis_client, make_settings, workers, report_trial
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=100, seed=4)) as simulator:
        env = chaos_env(redis_server.url, simulator)
        first = workers(env, threads=THREADS, name="first")
        cid, expected = start_campaign(redis_client, simulator, make_settings, "hold")
        wait_for(lambda: campaign_status(redis_client, cid).submitted >= 400, timeout=60)
        first.send_signal(signal.SIGTERM)  # to the main process, as an operator or an orchestrator would
        signalled_at = time.monotonic()
        first.wait(timeout=90)
        stopped_in = time.monotonic() - signalled_at
        handed_over = campaign_status(redis_client, cid)
        left_claimed = redis_client.hlen(keys.claims(cid))
        workers(env, threads=THREADS, name="second")
        status = wait_finished(redis_client, cid)
        verdict = check_invariants(redis_client, cid, simulator, expected, policy="hold", in_flight=0)

    report_trial(
        trial="sigterm", policy="hold", seed=4, lost=verdict.lost, duplicates=verdict.duplicates,
        unknown=status.unknown, lost_worker=verdict.lost_worker, resent=status.resent, recovery_s=stopped_in,
    )  # fmt: skip
    assert handed_over.pending > 0  # the first worker stopped mid-campaign, not at its end
    assert left_claimed == 0  # its chunks in flight were finished and settled, none abandoned
    assert (status.submitted, status.unknown) == (TOTAL, 0)


def test_sigterm_to_the_whole_process_group_stops_every_process_mid_campaign(
    redis_server, redis_client, make_settings, workers, report_trial
):
    """systemd's default stop signals every process of the group: each worker process sees the signal
    twice (its own and its parent's) and stops hard, as dramatiq means; it used to hang on the event
    loop thread. What it was sending is covered by the ledger: nothing lost, nothing twice."""
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=100, seed=5)) as simulator:
        env = chaos_env(redis_server.url, simulator)
        first = workers(env, threads=THREADS, name="first")
        cid, expected = start_campaign(redis_client, simulator, make_settings, "hold")
        wait_for(lambda: campaign_status(redis_client, cid).submitted >= 400, timeout=60)
        os.killpg(first.pid, signal.SIGTERM)
        signalled_at = time.monotonic()
        first.wait(timeout=60)  # a hang fails here
        stopped_in = time.monotonic() - signalled_at
        workers(env, threads=THREADS, name="second")
        status = wait_finished(redis_client, cid)
        verdict = check_invariants(redis_client, cid, simulator, expected, policy="hold", in_flight=IN_FLIGHT)

    report_trial(
        trial="sigterm:group", policy="hold", seed=5, lost=verdict.lost, duplicates=verdict.duplicates,
        unknown=status.unknown, lost_worker=verdict.lost_worker, resent=status.resent, recovery_s=stopped_in,
    )  # fmt: skip
    assert first.returncode is not None
    assert status.submitted + status.unknown == TOTAL
