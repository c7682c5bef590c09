"""kill -9 `campaign serve` (every process of it) while a load generator posts single messages, each with
its own Idempotency-Key; the generator retries a request that got no answer (a connection error, a
timeout, a 5xx) with the same key and body, as a client should, and `campaign serve` comes back.

Invariants: each key is answered with one id, on every 202 it gets; every accepted message ends
submitted or reported (failed, unknown); no body reaches the gateway twice; every submitted message is
one the gateway accepted, for its own number and body; nothing is lost.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable

import aiohttp
import pytest

from ops.services import free_port
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns, MessageState, MessageStatus
from redis_model.api_keys import ApiKeyStore
from tests.chaos.harness import API_KEY, kill9, wait_for, worker_env

pytestmark = pytest.mark.redis

TOTAL, CONNECTIONS, KILL_AFTER = 1500, 32, 400
DOWN_S = 0.7  # how long the service stays dead before it is started again
REQUEST_TIMEOUT_S, GIVE_UP_S = 5.0, 30.0
FINAL = (MessageStatus.SUBMITTED, MessageStatus.FAILED, MessageStatus.UNKNOWN)


def _message(n: int) -> dict[str, str]:
    return {"to": f"+9198{n:08d}", "sender": "KLRHXA", "type": "TXN", "body": f"Chaos order {n} shipped"}


class Load:
    """Posts TOTAL messages, CONNECTIONS at a time, each until a 202, retrying with the same key and body;
    every id each key was given, and what went wrong on the way."""

    def __init__(self, url: str, key: str) -> None:
        self.url, self.headers = url, {"Authorization": f"Bearer {key}"}
        self.ids: dict[str, list[str]] = defaultdict(list)  # Idempotency-Key -> the id of each 202
        self.accepted_at: dict[str, float] = {}  # Idempotency-Key -> when its first 202 came (Unix time)
        self.retried = 0  # requests sent again after no answer
        self.failures: Counter[str] = Counter()  # what made them retry: an exception's name or a 5xx
        self.refused: dict[str, tuple[int, str]] = {}  # a key answered 4xx: status and body
        self.in_flight = 0

    async def run(self, keys: list[str], during: Callable[[], object] | None = None) -> None:
        """Send one message for each of `keys` (`chaos-N` is message N); `during` runs alongside."""
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
        connector = aiohttp.TCPConnector(limit=CONNECTIONS)
        async with aiohttp.ClientSession(
            self.url, connector=connector, headers=self.headers, timeout=timeout
        ) as session:
            todo = iter(keys)

            async def sender() -> None:
                for key in todo:
                    await self._until_accepted(session, key)

            await asyncio.gather(*(sender() for _ in range(CONNECTIONS)), *([during()] if during else []))

    async def _until_accepted(self, session: aiohttp.ClientSession, key: str) -> None:
        body, headers = _message(int(key.removeprefix("chaos-"))), {"Idempotency-Key": key}
        deadline = time.monotonic() + GIVE_UP_S
        for attempt in itertools.count():
            if attempt:
                self.retried += 1
                assert time.monotonic() < deadline, f"{key}: no 202 in {GIVE_UP_S}s ({self.failures})"
                await asyncio.sleep(min(0.01 * 2**attempt, 0.2))
            self.in_flight += 1
            try:
                async with session.post("/v1/messages", json=body, headers=headers) as reply:
                    if reply.status == 202:
                        self.ids[key].append((await reply.json())["id"])
                        self.accepted_at.setdefault(key, time.time())
                        return
                    if reply.status < 500:
                        self.refused[key] = (reply.status, await reply.text())
                        return
                    self.failures[f"HTTP {reply.status}: {await reply.text()}"] += 1
            except (aiohttp.ClientError, TimeoutError) as e:
                self.failures[type(e).__name__] += 1
            finally:
                self.in_flight -= 1


def test_serve_killed_mid_stream_answers_each_key_one_id_and_sends_each_message_once(
    redis_server, redis_client, make_settings, workers, serve, report_trial
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=0, seed=13)) as simulator:
        env = worker_env(redis_server.url, simulator.base_url)
        workers(env, name="worker")
        _, api_key = ApiKeyStore(redis_client).create("chaos")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        first = serve(env, port)
        wait_for(lambda: _ready(url), timeout=30, interval=0.1)
        load = Load(url, api_key)
        kill: dict[str, float] = {}
        second: list[subprocess.Popen] = []

        async def kill_and_restart() -> None:
            """Once KILL_AFTER are accepted: kill -9, see the port refuse, start serve again DOWN_S later."""
            while len(load.accepted_at) < KILL_AFTER:
                await asyncio.sleep(0.002)
            kill["in_flight"], kill["killed"] = load.in_flight, time.time()
            kill9(first)
            await _until_refused(port)
            await asyncio.sleep(DOWN_S)
            kill["restarted"] = time.time()
            second.append(serve(env, port))

        keys = [f"chaos-{n}" for n in range(TOTAL)]
        began = time.monotonic()
        asyncio.run(load.run(keys, kill_and_restart))
        load_s = time.monotonic() - began
        asyncio.run(load.run(keys))  # every key once more, to the restarted service: its first id again
        assert second[0].poll() is None, "campaign serve, started again on the same port, ended"
        campaigns = Campaigns(redis_client, make_settings(simulator.base_url))
        first_ids = {key: ids[0] for key, ids in load.ids.items()}
        states = wait_for(lambda: _all_final(campaigns, first_ids), timeout=30, interval=0.2)
        record = list(simulator.record.messages)

    back = min(at for at in load.accepted_at.values() if at > kill["restarted"])
    # A key whose message Redis queued before the kill but whose first 202 came from the new service:
    # the answer was lost with the old one, the retry answered from the key (an id's time is the XADD's).
    replayed = sum(
        1
        for key, at in load.accepted_at.items()
        if at > kill["restarted"] and int(first_ids[key].split("-")[1]) / 1000 < kill["killed"]
    )
    bodies = Counter(sms.body for sms in record)
    by_status = Counter(state.status for state in states.values())
    sent = {sms.message_id: sms for sms in record}
    submitted = {key: s for key, s in states.items() if s.status is MessageStatus.SUBMITTED}
    lost = sum(1 for s in submitted.values() if s.message_id not in sent) + TOTAL - len(load.accepted_at)
    report_trial(
        trial="kill9:serve", accepted=len(load.accepted_at), retried=load.retried,
        in_flight=int(kill["in_flight"]), replayed=replayed, lost=lost,
        duplicates=sum(n - 1 for n in bodies.values()), unknown=by_status[MessageStatus.UNKNOWN],
        failed=by_status[MessageStatus.FAILED], recovery_s=back - kill["restarted"],
        down_s=back - kill["killed"], load_s=load_s,
    )  # fmt: skip
    assert not load.refused, f"refused: {dict(itertools.islice(load.refused.items(), 5))}"
    assert not [f for f in load.failures if f.startswith("HTTP 5")], f"5xx answers: {load.failures}"
    assert kill["in_flight"] > 0 and load.retried > 0  # the kill found requests under way
    assert len(load.accepted_at) == TOTAL
    assert all(len(set(ids)) == 1 and len(ids) == 2 for ids in load.ids.values()), "a key got two ids"
    assert len(set(first_ids.values())) == TOTAL
    assert bodies.most_common(1)[0][1] == 1, f"sent twice: {[b for b, n in bodies.items() if n > 1][:5]}"
    assert lost == 0
    assert set(sent) == {s.message_id for s in submitted.values()}, "the gateway got a message not ours"
    for key, state in submitted.items():
        sms, asked = sent[str(state.message_id)], _message(int(key.removeprefix("chaos-")))
        assert (sms.to, sms.body) == (asked["to"], asked["body"]), f"{key} sent as {sms}"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as reply:
            return bool(reply.status == 200)
    except OSError:  # not listening yet
        return False


async def _until_refused(port: int, timeout: float = 5.0) -> None:
    """Until nothing listens on `port`: no serving process outlived the kill."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            return
        except ConnectionResetError:  # accepted by a listener that died meanwhile: look again
            await asyncio.sleep(0.01)
            continue
        writer.close()
        assert time.monotonic() < deadline, f"port {port} still accepts connections after kill -9"
        await asyncio.sleep(0.01)


def _all_final(campaigns: Campaigns, ids: dict[str, str]) -> dict[str, MessageState] | None:
    states = {key: campaigns.message(message_id) for key, message_id in ids.items()}
    return states if all(s.status in FINAL for s in states.values()) else None
