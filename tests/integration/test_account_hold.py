"""An account-level fault (the key refused, the gateway out of reach) holds sending; it never fails
recipients, and sending resumes by itself once a probe finds the gateway taking requests again."""

from __future__ import annotations

import msgspec
import pytest

from campaign.cli import main
from ops.simulator import SimulatorConfig, start_in_thread
from producer import Campaigns
from producer.control import campaign_status
from redis_model import keys
from tests.integration.test_campaign_flow import API_KEY, events_of, publish_numbers, wait_for


def wait_state(backend, campaign_id: str, state: str):
    return wait_for(lambda: (s := campaign_status(backend.client, campaign_id)).state == state and s)


def test_a_refused_key_holds_the_campaign_and_fails_no_one(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key="another-key", seed=1)) as simulator:
        settings = make_settings(simulator.base_url, hold_probe_ms=200)  # the simulator refuses our key
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 1500)

        held = wait_state(backend, spec.campaign_id, "held")
        refused = simulator.record.rejected["UNAUTHORIZED"]
        wait_for(lambda: simulator.record.rejected["UNAUTHORIZED"] >= refused + 2)  # two probes since
        still = campaign_status(backend.client, spec.campaign_id)

    assert (held.submitted, held.failed, held.unknown, held.pending) == (0, 0, 0, 1500)
    assert (still.state, still.failed, still.pending) == ("held", 0, 1500)
    assert held.held_reason == "the gateway refused the API key (HTTP 401)"
    assert held.last_error == "UNAUTHORIZED: the gateway refused the API key (HTTP 401)"
    assert simulator.record.messages == []
    hold = backend.client.hgetall(keys.account_hold(settings.sid))
    assert (hold[b"code"], hold[b"scope"]) == (b"UNAUTHORIZED", b"config")
    assert settings.api_key.encode() not in b"".join(hold.values())  # a fingerprint, never the key


def test_sending_resumes_from_where_it_stopped_once_the_gateway_takes_the_key_again(
    backend, start_worker, make_settings, event_log
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=20, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, chunk_size=100, hold_probe_ms=200)
        broker = start_worker(settings, threads=2)
        spec = publish_numbers(backend, broker, settings, 3000)
        wait_for(lambda: campaign_status(backend.client, spec.campaign_id).submitted >= 300)
        simulator.set_faults(refuse_key=True)  # the key is revoked mid-campaign
        held = wait_state(backend, spec.campaign_id, "held")
        accepted_while_held = len(simulator.record.messages)
        simulator.set_faults(refuse_key=False)
        done = wait_state(backend, spec.campaign_id, "completed")

    assert 0 < accepted_while_held < 3000 and held.failed == 0
    assert (done.submitted, done.failed, done.unknown) == (3000, 0, 0)
    assert done.held_reason is None
    sent = [m.to for m in simulator.record.messages]
    assert len(sent) == len(set(sent)) == 3000  # each once, none twice
    assert not backend.client.exists(keys.account_hold(settings.sid))
    assert "account.resumed" in {e["event"] for e in events_of(event_log)}


def test_a_gateway_out_of_reach_past_the_retries_holds_rather_than_fails(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=1)) as simulator:
        base_url = simulator.base_url
    # The simulator is stopped: its port refuses connections.
    settings = make_settings(base_url, retry_attempts=2, hold_probe_ms=200)
    broker = start_worker(settings)
    spec = publish_numbers(backend, broker, settings, 500)

    held = wait_state(backend, spec.campaign_id, "held")

    assert (held.submitted, held.failed, held.pending) == (0, 0, 500)
    assert held.held_reason is not None and held.held_reason.startswith("cannot connect to")
    assert backend.client.hget(keys.account_hold(settings.sid), "scope") == b"gateway"  # holds every worker


@pytest.mark.parametrize(
    ("sid", "path"), [("HXANOTHER", ""), (None, "/wrong")], ids=["an unknown SID", "a wrong base URL"]
)
def test_a_gateway_that_does_not_know_the_account_holds_rather_than_fails(
    sid, path, backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, sid=sid, seed=1)) as simulator:
        settings = make_settings(simulator.base_url + path, hold_probe_ms=200)  # 404 on every request
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 300)
        held = wait_state(backend, spec.campaign_id, "held")

    assert (held.failed, held.pending) == (0, 300)
    assert held.held_reason is not None and "HTTP 404" in held.held_reason
    assert "KALEYRA_BASE_URL" in held.held_reason


def test_status_says_when_no_worker_has_taken_a_job_for_a_while(backend, make_settings, capsys, monkeypatch):
    settings = make_settings("http://127.0.0.1:9")
    from worker.broker import build_broker

    spec = publish_numbers(backend, build_broker(settings, backend.client), settings, 10)
    fresh = campaign_status(backend.client, spec.campaign_id)
    backend.client.hset(keys.campaign(spec.campaign_id), keys.CREATED_AT, fresh.created_at - 300)

    idle = campaign_status(backend.client, spec.campaign_id)

    assert fresh.idle_for is None
    assert idle.idle_for is not None and idle.idle_for >= 300
    monkeypatch.setattr("campaign.connect.campaigns", lambda: Campaigns(backend.client, settings))
    assert main(["status", spec.campaign_id]) == 0
    assert "no worker has taken a job of it for 5m" in capsys.readouterr().out
    assert main(["status", spec.campaign_id, "--json"]) == 0
    assert msgspec.json.decode(capsys.readouterr().out)["idle_for"] >= 300


def _hold(backend, settings, code: str, key: str, scope: str) -> None:
    """The account held as a worker would hold it, by a worker whose configuration has fingerprint `key`."""
    backend.client.hset(
        keys.account_hold(settings.sid),
        mapping={
            "code": code,
            "reason": f"{code} test",
            "key": key,
            "scope": scope,
            "probe_at": 0,
            "since": 0,
        },
    )


def test_a_key_refused_to_other_workers_does_not_hold_a_worker_with_another_key(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, hold_probe_ms=200)
        _hold(
            backend, settings, "UNAUTHORIZED", key="0123456789abcdef", scope="config"
        )  # the rotated-out key
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 500)
        done = wait_state(backend, spec.campaign_id, "completed")

    assert (done.submitted, done.failed) == (500, 0)
    assert simulator.record.rejected.get("E703", 0) == 0  # it sent without probing


def test_a_gateway_out_of_reach_holds_every_worker_until_a_probe_gets_through(
    backend, start_worker, make_settings
):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, hold_probe_ms=200)
        _hold(
            backend, settings, "CONNECT", key="0123456789abcdef", scope="gateway"
        )  # another worker could not connect
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 500)
        done = wait_state(backend, spec.campaign_id, "completed")

    assert (done.submitted, done.failed) == (500, 0)
    assert simulator.record.rejected["E703"] >= 1  # the probe: an empty `sms`, refused, nothing sent
    assert not backend.client.exists(keys.account_hold(settings.sid))


def test_a_hold_no_worker_renews_lapses(backend, make_settings):
    import asyncio

    from redis_model.sending_state import HOLD_LAPSE_PROBES, CampaignStore
    from schemas.errors import AccountFault

    settings = make_settings("http://127.0.0.1:9", hold_probe_ms=1000)

    async def hold() -> None:
        client = backend.async_factory()
        try:
            await CampaignStore(client, settings).hold_account("nonesuch", AccountFault("UNAUTHORIZED", "no"))
        finally:
            await client.aclose()

    asyncio.run(hold())

    assert 0 < backend.client.ttl(keys.account_hold(settings.sid)) <= HOLD_LAPSE_PROBES


def test_a_hold_that_names_no_scope_holds_every_worker(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=1)) as simulator:
        settings = make_settings(simulator.base_url, hold_probe_ms=200)
        backend.client.hset(
            keys.account_hold(settings.sid),
            mapping={"code": "UNAUTHORIZED", "reason": "old", "key": "0123456789abcdef", "probe_at": 0},
        )
        broker = start_worker(settings)
        spec = publish_numbers(backend, broker, settings, 100)
        wait_state(backend, spec.campaign_id, "completed")

    assert simulator.record.rejected["E703"] >= 1  # held, it probed before sending
