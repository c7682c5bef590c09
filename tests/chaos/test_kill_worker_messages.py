"""kill -9 a real worker while it sends single messages; a second worker takes over what the first left.

Invariants: every message ends submitted or unknown (none failed, none left queued or sending); no
number reaches the gateway twice; every submitted message is one the gateway accepted, with the id
it gave; unknown ones are at most those the dead worker had in flight.
"""

from __future__ import annotations

import time

import pytest

from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns, MessageStatus
from tests.chaos.harness import API_KEY, kill9, wait_for, worker_env
from tests.chaos.test_kill_worker import before_processing

pytestmark = pytest.mark.redis

TOTAL, HTTP_TIMEOUT_MS = 1500, 1500
# What one worker process can have in flight: 4 batches of up to 100 TXN messages.
IN_FLIGHT = 4 * 100


def test_a_worker_killed_mid_stream_of_single_messages_loses_none_and_sends_none_twice(
    redis_server, redis_client, make_settings, workers, report_trial
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=200, seed=11)) as simulator:
        settings = make_settings(simulator.base_url)
        campaigns = Campaigns(redis_client, settings)
        numbers = [f"+9190000{n:05d}" for n in range(TOTAL)]
        ids = [
            campaigns.send_message(to=number, body=f"Order {n} shipped", sender="SHOP", type="TXN").id
            for n, number in enumerate(numbers)
        ]
        env = worker_env(redis_server.url, simulator.base_url, http_timeout_ms=HTTP_TIMEOUT_MS,
                         retry_backoff_ms=100, retry_backoff_max_ms=500)  # fmt: skip
        first = workers(env, threads=2, name="first")
        wait_for(lambda: len(simulator.record.messages) >= 300, timeout=60)
        wait_for(lambda: before_processing(simulator), timeout=60, interval=0.005)
        killed_at = kill9(first)
        workers(env, threads=2, name="second")
        # The dead worker's entries wait a lease (the HTTP timeout and 10 s) before they are taken over.
        states = wait_for(lambda: _all_settled(campaigns, ids), timeout=120, interval=0.5)
        recovery = time.monotonic() - killed_at
        record = simulator.record

    accepted = {sms.to: sms.message_id for sms in record.messages}
    by_status = {status: [s for s in states if s.status == status] for status in MessageStatus}
    duplicates = sum(n - 1 for n in record.counts_by_number().values())
    report_trial(
        trial="kill9:messages", policy="hold", seed=11, duplicates=duplicates,
        lost=TOTAL - len(by_status[MessageStatus.SUBMITTED]) - len(by_status[MessageStatus.UNKNOWN]),
        unknown=len(by_status[MessageStatus.UNKNOWN]), recovery_s=recovery,
    )  # fmt: skip
    assert duplicates == 0
    assert len(by_status[MessageStatus.SUBMITTED]) + len(by_status[MessageStatus.UNKNOWN]) == TOTAL
    sent_to = dict(zip(ids, numbers, strict=True))
    assert all(accepted.get(sent_to[s.id]) == s.message_id for s in by_status[MessageStatus.SUBMITTED])
    assert 0 < len(by_status[MessageStatus.UNKNOWN]) <= IN_FLIGHT  # the kill found requests in flight
    assert all(s.code == "WORKER_LOST" for s in by_status[MessageStatus.UNKNOWN])


def _all_settled(campaigns: Campaigns, ids: list[str]):
    states = [campaigns.message(i) for i in ids]
    settled = (MessageStatus.SUBMITTED, MessageStatus.FAILED, MessageStatus.UNKNOWN)
    return states if all(s.status in settled for s in states) else None
