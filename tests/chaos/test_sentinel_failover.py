"""Redis under Sentinel: clients reach the master the sentinels name, and workers follow a failover.

The chaos trial kills -9 the master mid-campaign (the replica is promoted; the old master never comes
back). Replication is asynchronous: what the master acknowledged and had not yet sent to its replica
is lost, always a suffix of its writes. For the ledger that is at most the last writes of each sending
thread: a settlement lost (its claim goes stale and is held unknown after the lease) or a claim lost
(the chunk is sent, its settlement finds no claim, and the chunk is sent again). So the bound on
duplicates, and on unknown, is two chunks per sending thread, as long as the replication lag stays
under a gateway round trip (here 200 ms; on one machine it is microseconds). A second trial makes the
lag real: the replica is cut off, and the master killed as soon as it has acknowledged a settlement the
replica never received, and its thread has the reply (the first one ends the wait, so no thread loses
more than the bound allows, and every run loses something: a fixed sleep could fall between the
threads' settlements, and a kill before the reply let the thread settle again on the new master).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator

import pytest
import redis

from ops.services import free_port
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model.api_keys import ApiKeyStore
from redis_model.connection import async_client, sync_client
from schemas.settings import Settings
from tests.chaos.harness import API_KEY, CI, check_invariants, wait_finished, wait_for, worker_env
from tests.chaos.sentinels import MASTER_NAME, SentinelGroup, wait_for_failover
from worker.broker import build_broker

pytestmark = pytest.mark.redis

CHUNK = 100
WORKERS, THREADS = 2, 2
# Nothing listens on port 1: a client that did not go through the sentinels would fail at once.
UNUSED_URL = "redis://127.0.0.1:1/3"


def _group(tmp_path, **options) -> Iterator[SentinelGroup]:
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("CI=true needs redis-server on the PATH for the chaos tests")
        pytest.skip("redis-server is not installed")
    group = SentinelGroup(tmp_path, **options)
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def sentinel_group(tmp_path) -> Iterator[SentinelGroup]:
    """A master, a replica and three sentinels (quorum 2)."""
    yield from _group(tmp_path)


@pytest.fixture(scope="module")
def one_sentinel(tmp_path_factory) -> Iterator[SentinelGroup]:
    """A master, a replica and one sentinel (quorum 1): enough to name the master, or to force a failover.
    Shared by the module's tests, which find the master by asking (one of them fails it over)."""
    yield from _group(tmp_path_factory.mktemp("one-sentinel"), sentinels=1, quorum=1)


def sentinel_environ(group: SentinelGroup) -> dict[str, str]:
    return {
        "REDIS_URL": UNUSED_URL,
        "REDIS_SENTINELS": group.sentinels_setting,
        "REDIS_SENTINEL_MASTER": MASTER_NAME,
    }


def test_clients_made_from_the_settings_reach_the_master_the_sentinels_name(one_sentinel):
    settings = Settings.from_environ(sentinel_environ(one_sentinel))
    master = redis.Redis(*one_sentinel.master_address(), db=3)  # the database of REDIS_URL

    client = sync_client(settings)
    client.set("through", "sync")
    client.close()

    async def through_asyncio() -> None:
        client = async_client(settings)
        await client.set("through-async", "asyncio")
        await client.aclose()

    asyncio.run(through_asyncio())
    campaigns = Campaigns.from_environ(sentinel_environ(one_sentinel))
    assert campaigns.list_campaigns() == []
    assert (master.get("through"), master.get("through-async")) == (b"sync", b"asyncio")


def test_campaign_serve_reaches_the_master_through_the_sentinels(one_sentinel, serve):
    settings = Settings.from_environ(sentinel_environ(one_sentinel))
    _, api_key = ApiKeyStore(sync_client(settings)).create("sentinel")
    port = free_port()
    serve(os.environ | sentinel_environ(one_sentinel), port)
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(url), timeout=30, interval=0.1)

    message = {"to": "+919800000001", "sender": "KLRHXA", "type": "TXN", "body": "Through Sentinel"}
    request = urllib.request.Request(
        url + "/v1/messages", data=json.dumps(message).encode(), method="POST",
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 202
        queued = json.loads(reply.read())
    assert Campaigns.from_environ(sentinel_environ(one_sentinel)).message(queued["id"]).status == "queued"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:  # not listening yet, or Redis not reached yet (503)
        return False


def test_a_demoted_master_is_left_for_the_new_one(one_sentinel):
    """The old master stays up as a replica. Sentinel drops its clients as it demotes it; a client that
    still reaches it gets READONLY, which redis-py turns into a connection error (what the ledger, the
    broker's consumer and job retries ride out): at most one command fails, the next reaches the new
    master."""
    settings = Settings.from_environ(sentinel_environ(one_sentinel))
    client = sync_client(settings)
    client.set("before", "1")  # a pooled connection to the old master
    old = one_sentinel.master_address()
    wait_for(lambda: force_failover(one_sentinel), timeout=20, interval=0.2)
    wait_for_failover(one_sentinel, old, timeout=20)
    new = one_sentinel.master_address()
    demoted = redis.Redis(*old)
    wait_for(lambda: demoted.info("replication")["role"] == "slave", timeout=20)

    try:
        client.set("after", "1")
    except redis.ConnectionError:  # READONLY: this connection outlived the demotion
        client.set("after", "1")
    promoted = redis.Redis(*new, db=3)
    assert (promoted.get("before"), promoted.get("after")) == (b"1", b"1")
    assert demoted.info("replication")["master_port"] == new[1]
    client.close()


def force_failover(group: SentinelGroup) -> bool:
    """Ask the first sentinel to fail over now; False while it judges no replica ready yet."""
    try:
        return bool(redis.Redis(port=group.sentinel_ports[0]).sentinel_failover(MASTER_NAME))
    except redis.ResponseError as e:
        if "NOGOODSLAVE" not in str(e):
            raise
        return False


# False: the kill alone (the replica has all but microseconds of the master's writes); True: the replica
# cut off first, so the master's last acknowledged writes are lost.
@pytest.mark.parametrize("cut_replica", [False, True], ids=["kill", "cut-then-kill"])
def test_a_master_killed_mid_campaign_fails_over_and_the_campaign_completes(
    cut_replica, sentinel_group, make_settings, workers, report_trial
):
    environ = sentinel_environ(sentinel_group)
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=200, seed=7)) as simulator:
        # A short lease (HTTP timeout + 10 s) and heartbeat: a lost settlement is held within the test.
        env = environ | worker_env(
            UNUSED_URL, simulator.base_url, chunk_size=CHUNK, job_size=1000, job_min_backoff_ms=200,
            http_timeout_ms=1000, heartbeat_timeout_ms=5000,
        )  # fmt: skip
        sentinels = Settings.from_environ(environ).redis_sentinels
        settings = make_settings(
            simulator.base_url, chunk_size=CHUNK, job_size=1000, redis_url=UNUSED_URL,
            redis_sentinels=sentinels, redis_sentinel_master=MASTER_NAME,
        )  # fmt: skip
        client = sync_client(settings)
        total = 10_000
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
        rows = [(i + 2, f"9{i:09d}") for i in range(total)]
        publish_campaign(spec, rows, client=client, broker=build_broker(settings, client), settings=settings)
        expected = {f"+919{i:09d}" for i in range(total)}
        for _ in range(WORKERS):
            workers(env, threads=THREADS)

        wait_for(lambda: campaign_status(client, spec.campaign_id).submitted >= total // 5, timeout=60)
        old = sentinel_group.master_address()
        lag_s = 0.0
        if cut_replica:
            sentinel_group.cut_replication()
            cut_at = time.monotonic()
            # Read after the cut: a settlement counted from here on lives only on the master about to die.
            held = campaign_status(client, spec.campaign_id).submitted
            wait_for(
                lambda: campaign_status(client, spec.campaign_id).submitted > held, timeout=10, interval=0.002
            )
            # Then a moment for its thread to read the reply: killed before, it would settle again on the
            # new master (a settlement retries a connection error), and nothing would be lost.
            time.sleep(0.03)
            lag_s = time.monotonic() - cut_at
        killed_at = time.monotonic()
        sentinel_group.kill(sentinel_group.master_port)
        failover_s = wait_for_failover(sentinel_group, old, timeout=30)
        # Sending again: more settled on the new master than it held when it took over.
        promoted = wait_for(lambda: campaign_status(client, spec.campaign_id), timeout=30).submitted
        wait_for(lambda: campaign_status(client, spec.campaign_id).submitted > promoted, timeout=60)
        resumed_s = time.monotonic() - killed_at
        status = wait_finished(client, spec.campaign_id, timeout=60)
        recovery_s = time.monotonic() - killed_at
        in_flight = 2 * WORKERS * THREADS * CHUNK
        verdict = check_invariants(client, spec.campaign_id, simulator, expected, policy="hold",
                                   in_flight=in_flight, resent_by_failover=in_flight)  # fmt: skip
        accepted = len(simulator.record.messages)

    # What the gateway accepted is what was counted submitted, its duplicates, and some of the unknown.
    assert status.state == "completed"
    assert 0 <= accepted - verdict.duplicates - status.submitted <= status.unknown
    if cut_replica:  # a settlement was really lost: its chunk is held unknown (or sent again)
        assert verdict.duplicates + status.unknown > 0
    report_trial(
        trial=f"sentinel-failover-{'cut-then-kill' if cut_replica else 'kill'}", policy="hold", seed=7,
        lost=verdict.lost, lag_ms=round(lag_s * 1000),
        duplicates=verdict.duplicates, unknown=status.unknown, lost_worker=verdict.lost_worker,
        resent=status.resent, accepted=accepted, submitted=status.submitted, failover_s=failover_s,
        resumed_s=resumed_s, recovery_s=recovery_s,
    )  # fmt: skip
