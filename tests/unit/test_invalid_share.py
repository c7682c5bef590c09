import pytest

from producer.invalid import Allowance, Tally, printable
from producer.numbers import InvalidNumber, NumberNormaliser
from schemas.errors import SpecError
from schemas.settings import Settings, parse_share

LIMIT = Allowance(0.05, "CAMPAIGN_MAX_INVALID")


def tally(raws: list[str], prefix: str | None = None) -> Tally:
    counted = Tally(prefix)
    counted.count_page(NumberNormaliser(prefix), raws)
    return counted


@pytest.mark.parametrize(
    ("given", "share"),
    [("5%", 0.05), (" 5 % ", 0.05), ("0.05", 0.05), ("0", 0.0), ("100%", 1.0), ("1", 1.0), ("12.5%", 0.125)],
)
def test_a_share_is_a_percentage_or_a_fraction(given, share):
    assert parse_share(given) == pytest.approx(share)


@pytest.mark.parametrize("given", ["5", "-1%", "101%", "abc", "", "nan", "inf", "5%%"])
def test_anything_else_is_no_share(given):
    assert parse_share(given) is None


def test_the_setting_defaults_to_five_percent_and_reads_either_form():
    assert Settings.from_environ({}).max_invalid == 0.05
    assert Settings.from_environ({"CAMPAIGN_MAX_INVALID": "20%"}).max_invalid == pytest.approx(0.2)
    assert Settings.from_environ({"CAMPAIGN_MAX_INVALID": "0.2"}).max_invalid == pytest.approx(0.2)


def test_a_list_within_its_share_passes_and_at_it_too():
    tally(["+919876543210"] * 19 + ["nope"]).refuse_if_over(LIMIT)  # 5%: not more than 5%
    tally(["+919876543210"] * 71 + ["nope"] * 29).refuse_if_over(Allowance(0.29, "--max-invalid"))


def test_a_list_past_its_share_is_refused_with_the_share_and_the_likely_cause():
    counted = tally(["+919876543210"] * 40 + [f"98765{i:05d}" for i in range(59)] + ["x"])
    with pytest.raises(SpecError) as refused:
        counted.refuse_if_over(LIMIT)
    assert str(refused.value) == (
        "60 of 100 rows (60%) are invalid numbers, more than CAMPAIGN_MAX_INVALID (5%); "
        "likely cause: no --prefix: 59 national numbers; --max-invalid 60% allows it"
    )


def test_the_likely_cause_is_the_commonest_reason_when_a_prefix_was_given():
    counted = tally(["9876543210"] * 10 + ["Asha"] * 3, prefix="+91")
    with pytest.raises(SpecError, match=r"likely cause: 3 rows 'has letters'; --max-invalid 24% allows it"):
        counted.refuse_if_over(LIMIT)


def test_a_share_just_past_the_limit_is_shown_with_the_decimals_that_tell_them_apart():
    counted = tally(["+919876543210"] * 1990 + ["x"] * 101)  # 4.83%
    counted.refuse_if_over(LIMIT)
    counted = tally(["+919876543210"] * 18992 + ["x"] * 1008)  # 5.04%, not "5.0%"
    with pytest.raises(SpecError, match=r"1,008 of 20,000 rows \(5.04%\) are invalid"):
        counted.refuse_if_over(LIMIT)


def test_a_number_with_a_control_character_is_invalid_and_shown_escaped():
    normaliser = NumberNormaliser("+91")
    for raw in ("\x1f9876543210", "9876543210\x00", "98765\x8543210"):
        with pytest.raises(InvalidNumber) as invalid:
            normaliser.normalise(raw)
        assert invalid.value.reason == f"has {raw.strip('0123456789')!r}"
    assert printable("\x009876\x1b543210\t") == "\\x009876\\x1b543210\t"


def test_a_page_with_a_number_str_strip_would_clean_counts_it_invalid():
    """\\x1f and \\x85 are white space to `str.strip`: the page is still read row by row."""
    counted = tally(["9876543210", "9876543211\x1f", "\x859876543212"], "+91")
    assert (counted.rows, counted.invalid) == (3, 2)
    assert counted.reasons == {"has '\\x1f'": 1, "has '\\x85'": 1}
