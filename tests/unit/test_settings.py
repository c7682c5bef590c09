import pytest

from schemas.errors import SettingsError
from schemas.settings import Settings


def test_defaults_point_at_local_redis_and_the_india_pod():
    settings = Settings.from_environ({})
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.sms_json_url == "https://api.in.kaleyra.io/v1//sms/json"
    assert (settings.default_prefix, settings.default_unicode, settings.log_full_numbers) == (
        None,
        "auto",
        False,
    )


@pytest.mark.parametrize(
    ("region", "host"),
    [
        ("in", "api.in.kaleyra.io"),
        ("SG", "api.kaleyra.io"),
        ("eu", "api.eu.kaleyra.io"),
        ("na", "api.na.kaleyra.ai"),
    ],
)
def test_region_picks_the_pod(region, host):
    settings = Settings.from_environ({"KALEYRA_REGION": region, "KALEYRA_SID": "HX1"})
    assert settings.sms_json_url == f"https://{host}/v1/HX1/sms/json"


def test_base_url_overrides_the_region():
    env = {"KALEYRA_REGION": "eu", "KALEYRA_BASE_URL": "http://127.0.0.1:8088/", "KALEYRA_SID": "HX1"}
    assert Settings.from_environ(env).sms_json_url == "http://127.0.0.1:8088/v1/HX1/sms/json"


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"KALEYRA_REGION": "mars"}, "KALEYRA_REGION='mars' is not a pod"),
        ({"CAMPAIGN_DEFAULT_UNICODE": "utf8"}, "CAMPAIGN_DEFAULT_UNICODE='utf8' must be auto, 0 or 1"),
        ({"CAMPAIGN_DEFAULT_PREFIX": "91"}, "CAMPAIGN_DEFAULT_PREFIX='91'"),
        ({"CAMPAIGN_CHUNK_SIZE": "1001"}, "CAMPAIGN_CHUNK_SIZE=1001 must be between 1 and 1000"),
        ({"CAMPAIGN_MAX_IN_FLIGHT": "-1"}, "CAMPAIGN_MAX_IN_FLIGHT=-1 must be between 0 and 10000"),
        ({"KALEYRA_DLT_REQUIRED": "yes"}, "KALEYRA_DLT_REQUIRED='yes' must be 0 or 1"),
        ({"CAMPAIGN_RETRY_ATTEMPTS": "many"}, "CAMPAIGN_RETRY_ATTEMPTS='many' is not a whole number"),
        ({"CAMPAIGN_METRICS_PORT": "65536"}, "CAMPAIGN_METRICS_PORT=65536 must be between 0 and 65535"),
        ({"REDIS_URL": "http://:pw@host:1/0"}, "REDIS_URL='http://:***@host:1/0' must start with redis://"),
    ],
)
def test_bad_environment_is_refused_naming_the_variable(env, reason):
    with pytest.raises(SettingsError) as refused:
        Settings.from_environ(env)
    assert reason in str(refused.value)


def test_repr_hides_the_api_key_and_the_redis_password():
    settings = Settings.from_environ(
        {"KALEYRA_API_KEY": "Asecret123", "REDIS_URL": "redis://:hunter2@h:6379/0"}
    )
    assert "Asecret123" not in repr(settings) and "hunter2" not in repr(settings)
    assert "redis://:***@h:6379/0" in repr(settings)


def test_credentials_are_required_to_send():
    with pytest.raises(SettingsError, match="KALEYRA_API_KEY and KALEYRA_SID must be set"):
        Settings.from_environ({}).require_credentials()


def test_dlt_requirement_is_read_from_the_environment():
    assert Settings.from_environ({"KALEYRA_DLT_REQUIRED": "1"}).dlt_required
    assert not Settings.from_environ({}).dlt_required


def test_requests_in_flight_are_capped_only_when_asked():
    assert Settings.from_environ({}).max_in_flight == 0
    assert Settings.from_environ({"CAMPAIGN_MAX_IN_FLIGHT": "6"}).max_in_flight == 6


@pytest.mark.parametrize(
    "raw, seconds", [("30d", 2_592_000.0), ("12h", 43_200.0), ("90", 90.0), ("1.5m", 90.0)]
)
def test_retention_is_a_duration(raw, seconds):
    assert Settings.from_environ({"CAMPAIGN_RETENTION": raw}).retention_s == seconds


@pytest.mark.parametrize("raw", ["soon", "0", "-1d", "3w"])
def test_a_retention_that_is_no_duration_is_refused_naming_it(raw):
    with pytest.raises(SettingsError, match=f"CAMPAIGN_RETENTION={raw!r} is not a duration"):
        Settings.from_environ({"CAMPAIGN_RETENTION": raw})


@pytest.mark.parametrize(
    ("raw", "seconds"), [("", 600.0), ("90", 90.0), ("30m", 1800.0), ("0", 0.0), ("off", 0.0)]
)
def test_the_delivery_poll_is_a_duration_or_off(raw, seconds):
    assert Settings.from_environ({"CAMPAIGN_DLR_POLL_AFTER": raw}).dlr_poll_after_s == seconds


def test_a_delivery_poll_that_is_no_duration_is_refused_naming_it():
    with pytest.raises(SettingsError, match="CAMPAIGN_DLR_POLL_AFTER='soon'"):
        Settings.from_environ({"CAMPAIGN_DLR_POLL_AFTER": "soon"})
