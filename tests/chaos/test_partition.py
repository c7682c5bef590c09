"""Several hosts for real: workers in network namespaces of their own against one Redis and the gateway
simulator in the root namespace; one host is cut off mid-campaign (its link down: every packet dropped,
its worker alive) and restored, either once the others took its chunks in flight over, or sooner, past
the heartbeat timeout only (its jobs requeued, its claims live: back, it competes for its own jobs).

Invariants: the campaign completes; nothing is lost silently; what the cut host had in flight is reported
unknown (policy `hold`: in status and report, sent at most once) or sent again by another host
(`resend`: counted in `resent`, the only numbers that may go twice); the hosts left go on; back on the
network, the cut host sends nothing that was taken over, and under `hold` no chunk leaves two hosts.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from ops.services import RedisServer, free_port
from ops.simulator import SimulatorConfig, start_in_thread
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.report import report_rows
from producer.spec import build_spec
from redis_model import keys
from redis_model.jobs import read_job
from redis_model.ledger import WORKER_LOST_CODE
from redis_model.outcomes import chunk_outcome
from schemas.campaign import Outcome
from tests.chaos.harness import API_KEY, CI, check_invariants, wait_finished, wait_for, worker_env
from tests.chaos.hosts import Host, Network, unavailable
from worker.broker import build_broker

pytestmark = pytest.mark.redis

HOSTS, THREADS, CHUNK, JOB_SIZE, TOTAL = 3, 2, 20, 300, 4000
# Sized so that the two hosts left reach the cut host's requeued jobs about when its claims go stale.
LATENCY_MS, HTTP_TIMEOUT_MS, HEARTBEAT_TIMEOUT_MS = 200, 1500, 3000
IN_FLIGHT = THREADS * CHUNK  # what the cut host can have had mid-send: a chunk per thread


@pytest.fixture
def network() -> Iterator[Network]:
    if reason := unavailable():
        if CI:
            raise RuntimeError(f"CI=true needs network namespaces for the partition test: {reason}")
        pytest.skip(reason)
    with Network(HOSTS) as net:
        yield net


@pytest.fixture
def shared_redis(network: Network, tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (ops/redis.conf: AOF) on the bridge's address, for every host."""
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("CI=true needs redis-server on the PATH for the chaos tests")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path, free_port(), host=network.gateway)
    server.start()
    yield server
    server.kill()


def claims_by_host(client: redis.Redis, campaign_id: str, hosts: list[Host]) -> dict[str, dict[int, tuple]]:
    """Each host's live claims (`owner|deadline|offset|size`; the owner names the worker's pid): job ->
    (offset, size)."""
    owners = {pid: host.namespace for host in hosts for pid in host.pids()}
    held: dict[str, dict[int, tuple]] = {host.namespace: {} for host in hosts}
    claims: dict[bytes, bytes] = client.hgetall(keys.claims(campaign_id))  # type: ignore[assignment]
    for job, claim in claims.items():
        owner, _deadline, offset, size = claim.decode().split("|")
        if (namespace := owners.get(int(owner.split(":")[1]))) is not None:
            held[namespace][int(job)] = (int(offset), int(size))
    return held


def settled_past(client: redis.Redis, campaign_id: str, chunks: dict[int, tuple]) -> bool:
    """Whether each job's progress has passed its chunk (job -> (offset, size)): someone settled it."""
    return all(
        int(client.hget(keys.progress(campaign_id), str(job)) or 0) >= offset + size
        for job, (offset, size) in chunks.items()
    )


def reconnected(client: redis.Redis, host: Host, within_s: float) -> bool:
    """Whether Redis holds a connection from `host` opened in the last `within_s` seconds."""
    return any(
        c["addr"].rsplit(":", 1)[0] == host.address and int(c["age"]) <= within_s
        for c in client.client_list()
    )


def logged(events: Path, name: str, start: int = 0) -> list[dict]:
    """The events called `name` a worker wrote, from byte `start` of its events file."""
    with events.open("rb") as lines:
        lines.seek(start)
        return [json.loads(line) for line in lines if f'"{name}"'.encode() in line]


# How long the host stays cut off: until the others have taken its chunks in flight over (past its claims'
# lease), or only past the heartbeat timeout (its jobs requeued, its claims still live: back, it competes
# with the others for its own jobs).
PAST_LEASE, PAST_HEARTBEAT = "past_lease", "past_heartbeat"


@pytest.mark.parametrize(
    ("cut_for", "policy"), [(PAST_LEASE, "hold"), (PAST_LEASE, "resend"), (PAST_HEARTBEAT, "hold")]
)
def test_a_host_cut_off_mid_campaign_loses_nothing_and_sends_nothing_taken_over_when_back(
    cut_for, policy, network, shared_redis, make_settings, workers, tmp_path, report_trial
):
    client = redis.Redis.from_url(shared_redis.url)
    config = SimulatorConfig(api_key=API_KEY, latency_ms=LATENCY_MS, seed=6)
    with start_in_thread(config, host=network.gateway) as simulator:
        env = worker_env(
            shared_redis.url, simulator.base_url, chunk_size=CHUNK, http_timeout_ms=HTTP_TIMEOUT_MS,
            heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS, maintenance_chance=500_000,
            retry_backoff_ms=300, retry_backoff_max_ms=1000, job_min_backoff_ms=200,
        )  # fmt: skip
        for host in network.hosts:
            workers(env, threads=THREADS, name=host.namespace, within=host.within)
        settings = make_settings(simulator.base_url, chunk_size=CHUNK, job_size=JOB_SIZE)
        spec = build_spec(
            settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91", on_unknown=policy
        )
        rows = [(i + 2, f"90000{i:05d}") for i in range(TOTAL)]
        publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
        cid, expected = spec.campaign_id, {f"+9190000{i:05d}" for i in range(TOTAL)}
        cut = network.hosts[0]
        events = {host.namespace: tmp_path / f"{host.namespace}.jsonl" for host in network.hosts}

        # Given every host sending, the first one cut off while it holds claims.
        claimed: set[str] = set()  # the hosts seen holding a claim

        def every_host_claimed() -> bool:
            claimed.update(name for name, held in claims_by_host(client, cid, network.hosts).items() if held)
            return len(claimed) == HOSTS

        wait_for(every_host_claimed, timeout=60, interval=0.01)
        # A claim on each of its threads: both settling in the moment before the link goes down is unlikely.
        wait_for(
            lambda: len(claims_by_host(client, cid, [cut])[cut.namespace]) == THREADS,
            timeout=30,
            interval=0.002,
        )
        cut.cut_off()
        cut_at = time.monotonic()
        logged_at_cut = {name: path.stat().st_size for name, path in events.items()}
        time.sleep(0.5)  # what reached Redis before the cut has settled; the rest is stuck with the host
        stuck = claims_by_host(client, cid, [cut])[cut.namespace]
        stuck_chunks = {(job, offset) for job, (offset, _size) in stuck.items()}

        if cut_for == PAST_LEASE:  # the others take its chunks over once its claims are stale, and go on
            wait_for(lambda: settled_past(client, cid, stuck), timeout=60, interval=0.05)
        else:  # its heartbeat is stale: its jobs are back on the queue, its claims still live
            time.sleep(HEARTBEAT_TIMEOUT_MS / 1000 + 2)
        pending_at_restore = campaign_status(client, cid).pending
        restored_from = events[cut.namespace].stat().st_size
        accepted_at_restore = len(simulator.record.messages)
        cut.restore()
        restored_at = time.monotonic()
        # Back on the network: Redis sees a connection from the host made since.
        wait_for(lambda: reconnected(client, cut, time.monotonic() - restored_at), timeout=60, interval=0.1)
        back_s = time.monotonic() - restored_at
        wait_for(lambda: settled_past(client, cid, stuck), timeout=60, interval=0.05)
        settled_s = time.monotonic() - cut_at  # its chunks in flight settled, by whichever host
        status = wait_finished(client, cid, timeout=90)
        finished_s = time.monotonic() - cut_at
        verdict = check_invariants(client, cid, simulator, expected, policy=policy, in_flight=IN_FLIGHT)
        sent_after_cut = {
            name: {(e["job"], e["offset"]) for e in logged(path, "sms.submitted", logged_at_cut[name])}
            for name, path in events.items()
        }
        sent_by = Counter(chunk for path in events.values() for chunk in {
            (e["job"], e["offset"]) for e in logged(path, "sms.submitted")})  # fmt: skip
        sent_back = {
            (e["job"], e["offset"]) for e in logged(events[cut.namespace], "sms.submitted", restored_from)
        }
        after_restore = {message.to for message in simulator.record.messages[accepted_at_restore:]}
        accepted = simulator.record.counts_by_number()
        alive = [host.namespace for host in network.hosts if host.pids()]

    in_flight = sum(size for _offset, size in stuck.values())
    report_trial(
        trial=f"partition:{cut_for}", policy=policy, seed=6, lost=verdict.lost, duplicates=verdict.duplicates,
        unknown=status.unknown, lost_worker=verdict.lost_worker, resent=status.resent, in_flight=in_flight,
        in_flight_settled_s=settled_s, back_s=back_s, recovery_s=finished_s, back_chunks=len(sent_back),
    )  # fmt: skip
    assert pending_at_restore > 0, "the campaign ended before the host came back"
    assert status.state == "completed" and status.submitted + status.unknown == TOTAL
    assert 0 < in_flight <= IN_FLIGHT
    assert all(sent_after_cut[host.namespace] for host in network.hosts[1:]), "a host left did not go on"
    stuck_numbers: set[str] = set()
    for job, (offset, size) in stuck.items():
        outcome = chunk_outcome(client, cid, job, offset)
        assert outcome is not None and outcome.size == size
        if policy == "hold" and cut_for == PAST_LEASE:  # taken over: held unknown by another host, never sent
            assert (outcome.outcome, outcome.code) == (Outcome.UNKNOWN, WORKER_LOST_CODE)
        elif policy == "hold":  # back while its claims lived: settled by the host itself, its request timed
            # out (unknown), or went only once it was back (submitted, by it alone: checked below)
            assert outcome.outcome in (Outcome.UNKNOWN, Outcome.SUBMITTED)
        else:  # sent again by a host left, and counted
            assert outcome.outcome is Outcome.SUBMITTED
        stuck_job = read_job(client, cid, job)
        assert stuck_job is not None
        stuck_numbers |= {recipient.to for recipient in stuck_job.recipients[offset : offset + size]}
    # Only the cut host's chunks in flight may have gone twice (under `resend`); back, it sent none of them.
    assert all(count == 1 for number, count in accepted.items() if number not in stuck_numbers)
    assert max(accepted[number] for number in stuck_numbers) <= (1 if policy == "hold" else 2)
    if cut_for == PAST_LEASE:  # what was taken over, the host back sends none of
        assert not sent_back & stuck_chunks and not stuck_numbers & after_restore
    report = Counter(row.outcome for row in report_rows(client, cid))
    assert (report[Outcome.SUBMITTED.value], report[Outcome.UNKNOWN.value]) == (
        status.submitted,
        status.unknown,
    )
    if policy == "hold":
        assert all(hosts == 1 for hosts in sent_by.values()), "a chunk went out from two hosts"
        assert status.unknown >= in_flight if cut_for == PAST_LEASE else status.unknown <= in_flight
        # Only the cut host's chunks may be held for a worker lost (back in time, it records them itself).
        assert verdict.lost_worker == in_flight if cut_for == PAST_LEASE else verdict.lost_worker <= in_flight
    else:
        assert status.resent == in_flight
    assert status.failures == {} and alive == [host.namespace for host in network.hosts]
    client.close()
