"""Numbers masked in one shape for events and reports."""

from __future__ import annotations

from schemas.masking import mask_number, mask_numbers


def test_events_and_the_report_mask_a_number_alike():
    """Kaleyra echoes `919876543210` (events); the report holds `+919876543210`."""
    assert mask_numbers(["919876543210"]) == [mask_number("+919876543210")] == ["+91******3210"]


def test_a_value_written_without_the_plus_is_masked_as_written():
    assert mask_number("09876543210") == "09*****3210"
