"""`campaign keys create|list|revoke`: a key printed once and stored only as its SHA-256, listed without
it, revoked by name or id; and `campaign serve` answering on its port until SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from campaign.cli import main
from redis_model.api_keys import ApiKeyStore, digest
from redis_model.keys import API_KEYS_BY_DIGEST
from tests.integration.http_served import Served


@pytest.fixture
def redis_url(real_redis, monkeypatch) -> str:
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    return real_redis.url


def test_a_key_is_printed_once_and_stored_only_as_its_digest(redis_url, real_redis, capsys):
    assert main(["keys", "create", "orders", "--rate", "50"]) == 0
    key = capsys.readouterr().out.strip()

    assert key.startswith("ck_") and len(key) > 40
    stored = real_redis.client.hgetall(API_KEYS_BY_DIGEST)
    assert list(stored) == [digest(key).encode()]
    assert all(key.encode() not in value for value in stored.values())
    found = ApiKeyStore(real_redis.client).find(key)
    assert found is not None and found.rate == 50


def test_the_list_shows_name_id_and_rate_never_the_key(redis_url, capsys):
    main(["keys", "create", "orders", "--rate", "50"])
    key = capsys.readouterr().out.strip()

    assert main(["keys", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["rate"]) == ("orders", 50) and listed["id"].startswith("key_")
    assert key not in json.dumps(listed)
    main(["keys", "list"])
    assert "orders" in capsys.readouterr().out


@pytest.mark.parametrize("by", ["name", "id"])
def test_a_key_is_revoked_by_name_or_id(redis_url, real_redis, capsys, by):
    record, key = ApiKeyStore(real_redis.client).create("orders")

    assert main(["keys", "revoke", record.name if by == "name" else record.id]) == 0

    assert ApiKeyStore(real_redis.client).find(key) is None
    assert ApiKeyStore(real_redis.client).all() == []


def test_a_name_in_use_and_an_unknown_key_are_refused(redis_url, capsys):
    main(["keys", "create", "orders"])

    assert main(["keys", "create", "orders"]) == 2
    assert main(["keys", "revoke", "nobody"]) == 2
    assert "no API key named" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_answers_from_its_processes_and_ends_on_sigterm(redis_url, real_redis):
    _, key = ApiKeyStore(real_redis.client).create("orders")
    port = _free_port()
    command = [sys.executable, "-m", "campaign", "serve", "--port", str(port), "--processes", "2"]
    server = subprocess.Popen(command, env=os.environ | {"REDIS_URL": redis_url})
    try:
        served = Served("127.0.0.1", port, key)
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = served.call("GET", "/readyz")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.1)
        assert answer.status == 200
        assert served.call("GET", "/v1/campaigns").status == 200
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=40)
    assert code == 0
