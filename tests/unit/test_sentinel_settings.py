"""REDIS_SENTINELS and REDIS_SENTINEL_MASTER: read, refused in one line, and turned into Sentinel clients."""

import asyncio
import os
import subprocess
import sys

import pytest
from redis.asyncio.sentinel import SentinelConnectionPool as AsyncSentinelPool
from redis.sentinel import SentinelConnectionPool

from redis_model.connection import async_client, sync_client
from schemas.errors import SettingsError
from schemas.settings import Settings

SENTINELS = {
    "REDIS_URL": "redis://worker:s3cret@ignored:6379/4",
    "REDIS_SENTINELS": "10.0.0.1:26379, [fd00::2]:26380,sentinel-c:26381",
    "REDIS_SENTINEL_MASTER": "campaigns",
    "REDIS_SENTINEL_PASSWORD": "sentinel-pw",
}


def test_sentinels_are_read_with_their_master():
    settings = Settings.from_environ(SENTINELS)
    assert settings.redis_sentinels == (("10.0.0.1", 26379), ("fd00::2", 26380), ("sentinel-c", 26381))
    assert (settings.redis_sentinel_master, settings.redis_sentinel_password) == ("campaigns", "sentinel-pw")


def test_without_sentinels_nothing_is_read_and_the_client_is_redis_urls():
    settings = Settings.from_environ(
        {"REDIS_URL": "redis://127.0.0.1:6390/2", "REDIS_SENTINEL_PASSWORD": "x"}
    )
    assert (settings.redis_sentinels, settings.redis_sentinel_password) == ((), "")
    client = sync_client(settings)
    assert not isinstance(client.connection_pool, SentinelConnectionPool)
    assert client.connection_pool.connection_kwargs["port"] == 6390


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"REDIS_SENTINELS": "sentinel-a", "REDIS_SENTINEL_MASTER": "m"}, "'sentinel-a' is not host:port"),
        ({"REDIS_SENTINELS": "a:26379,b:x", "REDIS_SENTINEL_MASTER": "m"}, "'b:x' is not host:port"),
        ({"REDIS_SENTINELS": "a:70000", "REDIS_SENTINEL_MASTER": "m"}, "'a:70000' is not host:port"),
        ({"REDIS_SENTINELS": "a:26379,", "REDIS_SENTINEL_MASTER": "m"}, "'' is not host:port"),
        ({"REDIS_SENTINELS": "a:26379"}, "REDIS_SENTINEL_MASTER must name the master"),
        ({"REDIS_SENTINEL_MASTER": "m"}, "REDIS_SENTINEL_MASTER='m' needs REDIS_SENTINELS"),
        (
            {"REDIS_SENTINELS": "a:26379", "REDIS_SENTINEL_MASTER": "m", "REDIS_URL": "unix:///tmp/r.sock"},
            "not unix://",
        ),
    ],
)
def test_a_bad_sentinel_setting_is_refused_naming_it(environ, named):
    with pytest.raises(SettingsError, match="REDIS_SENTINEL") as refused:
        Settings.from_environ(environ)
    assert named in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_passwords_never_show():
    shown = repr(Settings.from_environ(SENTINELS))
    assert "s3cret" not in shown and "sentinel-pw" not in shown
    assert "redis_sentinel_password': '***'" in shown


def test_clients_ask_the_sentinels_for_the_master_with_redis_urls_database_and_credentials():
    settings = Settings.from_environ(SENTINELS)
    client = sync_client(settings)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool) and pool.service_name == "campaigns"
    assert {k: pool.connection_kwargs[k] for k in ("db", "username", "password")} == {
        "db": 4,
        "username": "worker",
        "password": "s3cret",
    }
    assert pool.connection_kwargs["socket_timeout"] > 0  # a silent master is given up, not waited on forever
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["host"], sentinel["password"]) == ("10.0.0.1", "sentinel-pw")
    client.close()

    native = async_client(settings)
    assert isinstance(native.connection_pool, AsyncSentinelPool)
    assert native.connection_pool.connection_kwargs["db"] == 4
    asyncio.run(native.aclose())


def test_the_cli_refuses_a_bad_sentinel_list_in_one_line():
    environ = os.environ | {"REDIS_SENTINELS": "sentinel-a", "REDIS_SENTINEL_MASTER": "m"}
    done = subprocess.run(
        [sys.executable, "-m", "campaign", "list"], env=environ, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "'sentinel-a' is not host:port" in done.stderr
