from datetime import UTC, datetime, timedelta, timezone

import pytest

from producer.spec import build_spec
from schemas.campaign import MessageType
from schemas.errors import SpecError
from schemas.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def spec(**overrides):
    options = {"sender": "KLRHXA", "type": "MKT", "body": "Hello"} | overrides
    return build_spec(settings=Settings(), now=NOW, **options)


def test_valid_options_make_a_spec():
    made = spec(type="txn", prefix="+91", unicode="AUTO", name="november")
    assert made.type is MessageType.TXN
    assert (made.prefix, made.unicode, made.name) == ("+91", "auto", "november")
    assert len(made.campaign_id) == 32


def test_default_prefix_comes_from_settings_when_none_is_given():
    made = build_spec(settings=Settings(default_prefix="+44"), sender="KLRHXA", type="MKT", body="Hi")
    assert made.prefix == "+44"


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"sender": "KLR HXA!"}, "sender 'KLR HXA!' is not a sender ID"),
        ({"sender": "ABCDEFGHIJKL"}, "sender 'ABCDEFGHIJKL'"),
        ({"type": "PROMO"}, "type 'PROMO' is not one of MKT, TXN, OTP, DEFAULT, TXND"),
        ({"body": "   "}, "body is empty"),
        ({"body": "x" * 4001}, "body has 4001 characters; Kaleyra accepts at most 4000"),
        ({"unicode": "2"}, "unicode '2' must be auto, 0 or 1"),
        ({"unicode": "0", "body": "Hello ŝ"}, "unicode 0 cannot carry 'ŝ'"),
        ({"prefix": "91"}, "prefix '91' is not a country calling code"),
        ({"prefix": "+999"}, "prefix '+999' is not a country calling code"),
        ({"at": "tomorrow"}, "at 'tomorrow' is not an ISO 8601 time"),
        ({"at": "2026-11-24T10:00:00"}, "has no UTC offset"),
        ({"at": (NOW + timedelta(minutes=14)).isoformat()}, "less than 15 minutes ahead"),
        ({"at": (NOW + timedelta(days=93)).isoformat()}, "more than 3 months ahead"),
        ({"send_window": "9-21"}, "send-window '9-21' is not a daily window like 09:00-21:00"),
        ({"type": "TXN", "send_window": "09:00-21:00"}, "send-window applies to marketing campaigns"),
        ({"type": "OTP", "at": (NOW + timedelta(hours=1)).isoformat()}, "type OTP cannot be scheduled"),
        (
            {"at": (NOW + timedelta(hours=2)).isoformat(), "expires_in": "1h"},
            "ends before the campaign's time",
        ),
        ({"template_id": "12 34"}, "template-id '12 34' is not a DLT ID"),
        ({"template_id": "T-1107"}, "template-id 'T-1107' is not a DLT ID"),
        ({"entity_id": "12345"}, "entity-id '12345' is not a DLT ID: the platform's IDs are 12 to 25 digits"),
    ],
)
def test_bad_options_are_refused_naming_the_value(options, reason):
    with pytest.raises(SpecError, match=None) as refused:
        spec(**options)
    assert reason in str(refused.value)
    assert "\n" not in str(refused.value)


def test_body_of_exactly_4000_characters_is_accepted():
    assert len(spec(body="x" * 4000).body) == 4000


def test_schedule_keeps_the_offset_and_drops_microseconds():
    at = (NOW + timedelta(hours=2)).astimezone(timezone(timedelta(hours=5, minutes=30)))
    assert spec(at=at.isoformat()).at == at.replace(microsecond=0).isoformat()
    assert spec(at=at.isoformat()).at.endswith("+05:30")


def test_schedule_accepts_the_last_day_of_the_three_month_window():
    assert spec(at=(NOW + timedelta(days=90)).isoformat()).at is not None


def test_unicode_0_accepts_gsm7_extension_characters():
    assert spec(unicode="0", body="Price: 10€ [ok] {x}").unicode == "0"


def test_an_unknown_default_prefix_is_refused_not_a_traceback():
    with pytest.raises(SpecError, match=r"prefix '\+1242' is not a country calling code"):
        build_spec(settings=Settings(default_prefix="+1242"), sender="KLRHXA", type="MKT", body="Hi")


def test_a_body_with_undecodable_bytes_is_refused():
    with pytest.raises(SpecError, match="not UTF-8"):
        spec(body="caf\udce9")  # how Python hands over a Latin-1 byte from argv


@pytest.mark.parametrize(("given", "seconds"), [("90", 90), ("30m", 1800), ("2h", 7200), ("1.5d", 129600)])
def test_expiry_is_a_duration_from_now(given, seconds):
    assert spec(expires_in=given).expires_at == NOW.timestamp() + seconds


@pytest.mark.parametrize("given", ["soon", "-5m", "0", "2w"])
def test_bad_expiry_is_refused(given):
    with pytest.raises(SpecError, match=f"expires-in '{given}' is not a duration"):
        spec(expires_in=given)


TEMPLATE_ID, ENTITY_ID = "1107161234567890123", "1201159178483176795"


def test_dlt_ids_of_the_platform_shape_are_kept():
    made = spec(template_id=f" {TEMPLATE_ID} ", entity_id=ENTITY_ID)
    assert (made.template_id, made.entity_id) == (TEMPLATE_ID, ENTITY_ID)


@pytest.mark.parametrize(
    ("ids", "missing"),
    [({}, "--template-id and --entity-id"), ({"template_id": TEMPLATE_ID}, "--entity-id")],
)
def test_an_account_that_needs_dlt_is_refused_on_the_in_pod_without_both_ids(ids, missing):
    settings = Settings(dlt_required=True, region="in")
    with pytest.raises(SpecError) as refused:
        build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", **ids)
    assert str(refused.value).startswith(f"{missing} required: on the IN pod")


def test_dlt_ids_are_not_required_on_other_pods_or_when_the_account_does_not_need_them():
    for settings in (Settings(dlt_required=True, region="sg"), Settings(dlt_required=False, region="in")):
        assert build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi").template_id is None
