"""The Kaleyra client against the real simulator over TCP: retries, and what is never retried."""

from __future__ import annotations

import asyncio
import socket

import msgspec

from ops.simulator import SimulatorConfig, start_in_thread
from schemas.errors import AmbiguousGatewayError, PermanentGatewayError, TransientGatewayError
from schemas.kaleyra import SmsJsonRequest, SmsNode
from worker.gateway import KaleyraClient

API_KEY = "client-test-key"
PAYLOAD = msgspec.json.encode(
    SmsJsonRequest(sms=[SmsNode(to="+919000000001"), SmsNode(to="+919000000002")], from_="KLRHXA", body="Hi")
)


def send(make_settings, base_url: str, payload: bytes = PAYLOAD, **overrides):
    """Run one `send` on a fresh loop; return (accepted or the error, retries seen)."""
    retries: list[str] = []

    async def on_retry(error: TransientGatewayError) -> None:
        retries.append(error.code)

    async def run():
        client = KaleyraClient(make_settings(base_url, **overrides))
        try:
            return await client.send(payload, on_retry=on_retry)
        except Exception as e:  # handed back to the test
            return e
        finally:
            await client.close()

    return asyncio.run(run()), retries


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_accepted_request_returns_one_message_id_per_node(make_settings, simulator):
    accepted, retries = send(make_settings, simulator.base_url)
    assert [s.number for s in accepted] == ["919000000001", "919000000002"]
    assert retries == []


def test_e403_is_retried_until_the_attempts_run_out(make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, e403_rate=1.0, seed=1)) as simulator:
        error, retries = send(make_settings, simulator.base_url, api_key=API_KEY, retry_attempts=4)
        assert isinstance(error, TransientGatewayError) and error.code == "E403"
        assert retries == ["E403"] * 3
        assert simulator.record.stats().requests == 4


def test_connection_refused_is_retried_as_nothing_was_sent(make_settings):
    error, retries = send(make_settings, f"http://127.0.0.1:{closed_port()}", retry_attempts=3)
    assert isinstance(error, TransientGatewayError) and error.code == "CONNECT"
    assert retries == ["CONNECT", "CONNECT"]


def test_permanent_error_is_not_retried(make_settings, simulator):
    otp_of_two = msgspec.json.encode(
        SmsJsonRequest(
            sms=[SmsNode(to="+919000000001"), SmsNode(to="+919000000002")],
            type="OTP",
            from_="KLRHXA",
            body="1234",
        )
    )
    error, retries = send(make_settings, simulator.base_url, otp_of_two)
    assert isinstance(error, PermanentGatewayError) and error.code == "E708"
    assert retries == []
    assert simulator.record.stats().requests == 1


def test_timeout_is_an_unknown_outcome_and_not_retried(make_settings):
    with start_in_thread(SimulatorConfig(api_key="test-key-0123456789abcdef", latency_ms=2000)) as simulator:
        error, retries = send(make_settings, simulator.base_url, http_timeout_s=0.2)
        assert isinstance(error, AmbiguousGatewayError) and error.code == "TIMEOUT"
        assert retries == []
        assert simulator.record.stats().requests == 1


def test_api_key_never_appears_in_an_error(make_settings):
    error, _ = send(make_settings, f"http://127.0.0.1:{closed_port()}", api_key=API_KEY, retry_attempts=1)
    assert isinstance(error, TransientGatewayError)
    assert API_KEY not in str(error) and API_KEY not in repr(error)


def _send_at_once(settings, urgent: list[bool]) -> list:
    """`send` one request per entry of `urgent`, all at once on one client; their results."""

    async def run():
        client = KaleyraClient(settings)
        try:
            return await asyncio.gather(*(client.send(PAYLOAD, urgent=u) for u in urgent))
        finally:
            await client.close()

    return asyncio.run(run())


def test_bulk_requests_in_flight_are_capped_and_urgent_ones_do_not_wait(make_settings):
    """Five bulk and two urgent requests at once, with places for two bulk ones: the gateway (whose
    latency outlasts their start) holds four at most; without the cap, all seven."""
    requests = [False] * 5 + [True] * 2
    with start_in_thread(SimulatorConfig(api_key=API_KEY, latency_ms=400)) as simulator:
        capped = _send_at_once(make_settings(simulator.base_url, api_key=API_KEY, max_in_flight=2), requests)
        capped_stats = simulator.record.stats()
        simulator.record.clear()
        uncapped = _send_at_once(make_settings(simulator.base_url, api_key=API_KEY), requests)
        uncapped_stats = simulator.record.stats()

    assert [len(accepted) for accepted in capped + uncapped] == [2] * 14
    assert (capped_stats.accepted_requests, capped_stats.most_in_flight) == (7, 4)
    assert (uncapped_stats.accepted_requests, uncapped_stats.most_in_flight) == (7, 7)
