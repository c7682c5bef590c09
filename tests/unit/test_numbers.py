import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from producer.numbers import InvalidNumber, NumberNormaliser, is_country_code
from schemas.masking import mask_number, mask_numbers

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
PREFIXES = [None, "+91", "+1", "+44", "+7", "+39", "+49", "+800"]


@pytest.mark.parametrize(
    ("prefix", "raw", "expected"),
    [
        # India: 10-digit mobiles, trunk 0.
        ("+91", "+919876543210", "+919876543210"),
        ("+91", "00919876543210", "+919876543210"),
        ("+91", "09876543210", "+919876543210"),
        ("+91", "919876543210", "+919876543210"),
        ("+91", "9198765432", "+919198765432"),
        ("+91", "9876543210", "+919876543210"),
        ("+91", "98765 43210", "+919876543210"),
        ("+91", "98765-43210", "+919876543210"),
        ("+91", "98.765.432.10", "+919876543210"),
        ("+91", "(+91) 98765 43210", "+919876543210"),
        ("+91", "[0]98765-43210", "+919876543210"),
        ("+91", " \t9876543210\r\n", "+919876543210"),
        ("+91", "+91 (0) 98765 43210", "+919876543210"),
        ("+91", "+1 415 555 2671", "+14155552671"),
        # United States: the prefix +1 is also the trunk prefix.
        ("+1", "(415) 555-2671", "+14155552671"),
        ("+1", "14155552671", "+14155552671"),
        ("+1", "415.555.2671", "+14155552671"),
        ("+1", "+1 415-555-2671", "+14155552671"),
        ("+1", "001 415 555 2671", "+14155552671"),
        # United Kingdom: trunk 0.
        ("+44", "07911 123456", "+447911123456"),
        ("+44", "447911123456", "+447911123456"),
        ("+44", "7911 123456", "+447911123456"),
        ("+44", "+44 (0)7911 123456", "+447911123456"),
        # Russia's trunk prefix is 8; Italy has none, so its leading 0 stays.
        ("+7", "8 916 123-45-67", "+79161234567"),
        ("+39", "06 1234 5678", "+390612345678"),
        # No prefix: only numbers that carry their country code.
        (None, "+919876543210", "+919876543210"),
        (None, "0044 7911 123456", "+447911123456"),
        (None, "+800 1234 5678", "+80012345678"),
    ],
)
def test_normalise_returns_e164(prefix, raw, expected):
    assert NumberNormaliser(prefix).normalise(raw) == expected


@pytest.mark.parametrize(
    ("prefix", "raw", "reason"),
    [
        ("+91", "98765abcde", "has letters"),
        ("+91", "", "is empty"),
        ("+91", "   ", "is empty"),
        ("+91", "+", "has no digits"),
        ("+91", "(--)", "has no digits"),
        ("+91", "98765#4321", "has '#'"),
        ("+91", "*98765432", "has '*'"),
        ("+91", "98765+43210", "has a '+' that is not at the start"),
        ("+91", "++919876543210", "has a '+' that is not at the start"),
        ("+91", "98765", "too short for +91"),
        ("+91", "+9198765432", "too short for +91"),
        ("+91", "98765432101", "too long for +91"),
        ("+91", "+9198765432101", "too long for +91"),
        ("+91", "+999 123 456 789", "unknown country code"),
        ("+91", "+0 98765 43210", "unknown country code"),
        ("+91", "+91 9876 5432 1012 34", "too long"),
        ("+1", "555-2671", "too short for +1"),
        (None, "+98 1234 5678", "wrong length for +98"),
        (None, "9876543210", "has no country code and no prefix was given"),
        (None, "919876543210", "has no country code and no prefix was given"),
    ],
)
def test_normalise_rejects_with_reason(prefix, raw, reason):
    with pytest.raises(InvalidNumber) as caught:
        NumberNormaliser(prefix).normalise(raw)
    assert caught.value.reason == reason


def test_invalid_number_message_leaves_the_number_to_the_caller():
    """The number may be logged masked, so it is in `raw` and not in the message."""
    with pytest.raises(InvalidNumber) as caught:
        NumberNormaliser("+91").normalise("98765")
    assert str(caught.value) == "too short for +91"
    assert caught.value.raw == "98765"


def test_invalid_number_is_a_value_error():
    with pytest.raises(ValueError):
        NumberNormaliser("+91").normalise("abc")


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("+91", True),
        ("+1", True),
        ("+44", True),
        ("+800", True),
        ("+882", True),
        ("+999", False),
        ("91", False),
        ("+091", False),
        ("+1242", False),
        ("+ 91", False),
        ("+", False),
        ("", False),
        ("+\u0669\u0661", False),  # Arabic-Indic digits for 91
    ],
)
def test_is_country_code(prefix, expected):
    assert is_country_code(prefix) is expected


@pytest.mark.parametrize("prefix", ["+999", "91", "", "+"])
def test_normaliser_refuses_an_unknown_prefix(prefix):
    with pytest.raises(ValueError, match="not a known country calling code"):
        NumberNormaliser(prefix)


def _phone_like(lead: str, digits: str, marks: list[tuple[int, str]]) -> str:
    for at, mark in marks:
        digits = digits[:at] + mark + digits[at:]
    return lead + digits


phone_like = st.builds(
    _phone_like,
    st.sampled_from(["", "+", "00", "0", " "]),
    st.text(alphabet="0123456789", min_size=4, max_size=17),
    st.lists(st.tuples(st.integers(0, 17), st.sampled_from(" -.()[]")), max_size=4),
)


def _normalise_or_none(prefix, raw):
    try:
        return NumberNormaliser(prefix).normalise(raw)
    except InvalidNumber:
        return None


@given(prefix=st.sampled_from(PREFIXES), raw=phone_like)
def test_normalisation_is_idempotent(prefix, raw):
    once = _normalise_or_none(prefix, raw)
    if once is not None:
        assert NumberNormaliser(prefix).normalise(once) == once


@given(prefix=st.sampled_from(PREFIXES), raw=st.one_of(phone_like, st.text()))
def test_any_output_is_e164(prefix, raw):
    """Anything that normalises is E.164, as Recipient.to expects; the rest raise InvalidNumber."""
    once = _normalise_or_none(prefix, raw)
    assert once is None or E164.match(once)


_ONE_SHAPE = st.integers(0, 16).flatmap(
    lambda size: st.lists(st.text("0123456789+\né", min_size=size, max_size=size))
)


@given(st.one_of(_ONE_SHAPE, st.lists(st.text(max_size=20), max_size=8)))
def test_masking_a_chunks_numbers_at_once_masks_each_as_alone(numbers):
    assert mask_numbers(numbers) == [mask_number(n) for n in numbers]


def test_a_chunk_of_one_shape_keeps_two_digits_of_the_country_code_and_four_at_the_end():
    assert mask_numbers(["919876540000", "919876540001"]) == ["91******0000", "91******0001"]


def _national_by_the_rules(prefix: str, digits: str) -> str | None:
    """Kaleyra's prefix rule worked out from the country's metadata, for comparison."""
    from producer.numbers import _country

    code, lengths, trunk = _country(prefix[1:])
    if digits.startswith(code) and len(digits) - len(code) in lengths:
        return "+" + digits
    if trunk and digits.startswith(trunk) and len(digits) - len(trunk) in lengths:
        return "+" + code + digits[len(trunk) :]
    return "+" + code + digits if len(digits) in lengths else None


@given(
    st.sampled_from(["+91", "+44", "+1", "+36", "+7", "+49", "+882", "+290"]),
    st.from_regex(r"0?[1-9][0-9]{0,15}", fullmatch=True),  # a trunk 0 or none ("00" is international)
)
def test_a_national_number_reads_as_the_prefix_rule_says_whatever_its_length(prefix, digits):
    try:
        normalised = NumberNormaliser(prefix).normalise(digits)
    except InvalidNumber:
        normalised = None
    assert normalised == _national_by_the_rules(prefix, digits)


@given(
    st.sampled_from(["+91", "+44", "+1", "+49"]),
    st.integers(1, 14).flatmap(
        lambda size: st.lists(
            st.from_regex(rf"\s?0?0?[0-9]{{{size}}}\s?", fullmatch=True), min_size=1, max_size=6
        )
    ),
)
def test_a_page_normalised_at_once_reads_as_each_row_alone(prefix, raws):
    normaliser = NumberNormaliser(prefix)
    each = []
    for raw in raws:
        try:
            each.append(normaliser.normalise(raw))
        except InvalidNumber:
            each.append(None)
    at_once = normaliser.normalise_all(raws)
    assert at_once is None or at_once == each  # None: the rows are read one by one instead


def test_a_page_of_plain_national_numbers_is_normalised_at_once():
    assert NumberNormaliser("+91").normalise_all(["9876543210", " 9876543211"]) == [
        "+919876543210",
        "+919876543211",
    ]
    assert NumberNormaliser("+91").normalise_all(["919876543210"]) == ["+919876543210"]
    assert NumberNormaliser("+91").normalise_all(["9876543210", "98765"]) is None  # one is invalid
    assert NumberNormaliser(None).normalise_all(["9876543210"]) is None  # no prefix: each says why
