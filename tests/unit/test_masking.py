"""What output hides: numbers in one shape for events and reports, and a Redis URL's password."""

from __future__ import annotations

import pytest

from schemas.masking import mask_number, mask_numbers, redact_url


def test_events_and_the_report_mask_a_number_alike():
    """Kaleyra echoes `919876543210` (events); the report holds `+919876543210`."""
    assert mask_numbers(["919876543210"]) == [mask_number("+919876543210")] == ["+91******3210"]


def test_a_value_written_without_the_plus_is_masked_as_written():
    assert mask_number("09876543210") == "09*****3210"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://:s3cret@h:6379/0", "redis://:***@h:6379/0"),
        ("rediss://default:s3cret@h:6380", "rediss://default:***@h:6380"),
        ("redis://h:6379/0?password=s3cret&db=2", "redis://h:6379/0?password=***&db=2"),
        ("unix:///run/redis.sock?db=1&password=s3cret", "unix:///run/redis.sock?db=1&password=***"),
        ("redis://:s3/c?r@t@h:6379/0", "redis://:***@h:6379/0"),  # unescaped / ? @ in the password
        ("redis://:s3cret@h:notaport/0", "redis://:***@h:notaport/0"),  # does not parse
        ("redis://u[:s3cret@h/0", "redis://u[:***@h/0"),  # a stray bracket: does not parse
    ],
)
def test_a_redis_url_is_shown_without_its_password(url, shown):
    assert redact_url(url) == shown
