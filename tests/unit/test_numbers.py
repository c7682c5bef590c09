import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ops.bench import numbers as bench_numbers
from producer.numbers import InvalidNumber, NoCountryCode, NumberNormaliser, is_country_code, reads_as_number
from schemas.masking import as_e164, mask_number, mask_numbers

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
        ("+91", "+91 9876 5432 1012 34", "too long for +91"),
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
    assert mask_numbers(numbers) == [mask_number(n) for n in as_e164(numbers)]


def test_a_chunk_of_one_shape_keeps_two_digits_of_the_country_code_and_four_at_the_end():
    assert mask_numbers(["919876540000", "919876540001"]) == ["+91******0000", "+91******0001"]


@pytest.mark.parametrize(
    ("prefix", "raw", "expected"),
    [
        # A trunk 0 written after the country code goes, even where the longer number would fit.
        ("+49", "+49 (0)15123456789", "+4915123456789"),
        ("+62", "+62 (0)812 3456 7890", "+6281234567890"),
        ("+55", "+55 (0)11 91234 5678", "+5511912345678"),
        ("+971", "+971 (0)50 123 4567", "+971501234567"),
        # Italian mobiles 390-393 and 397 written nationally: Italy has no trunk prefix to drop.
        ("+39", "3901234567", "+393901234567"),
        ("+39", "3931234567", "+393931234567"),
        ("+39", "3971234567", "+393971234567"),
        ("+39", "393931234567", "+393931234567"),
        # Both readings valid: the mobile, not Rome's 06 123456.
        ("+39", "3906123456", "+393906123456"),
        # Both readings valid: +49 151 mobile rather than a fixed line in area 04915.
        ("+49", "4915123456789", "+4915123456789"),
        # AU dials abroad with 0011: Kaleyra's "00" reading (+11...) is no number, libphonenumber's is.
        ("+61", "0011 44 7911 123456", "+447911123456"),
    ],
)
def test_numbers_read_as_libphonenumber_reads_them(prefix, raw, expected):
    assert NumberNormaliser(prefix).normalise(raw) == expected


@pytest.mark.parametrize(
    ("prefix", "raw", "reason"),
    [
        ("+91", "0987654321", "too short for +91"),  # the trunk 0 goes: 9 digits are left
        ("+1", "(015) 555-2671", "not a valid number for +1"),  # area codes do not start with 0 or 1
        ("+1", "(115) 555-2671", "not a valid number for +1"),
        ("+44", "+44 7700 900123", "not a valid number for +44"),  # possible, but a range kept for drama
    ],
)
def test_numbers_libphonenumber_finds_invalid_are_refused(prefix, raw, reason):
    with pytest.raises(InvalidNumber) as caught:
        NumberNormaliser(prefix).normalise(raw)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "raw",
    [
        "98765\u00a043210",  # no-break space
        "98765\u202f43210",  # narrow no-break space
        "98765\u200743210",  # figure space
        "98765\t43210",
        "98765\u201343210",  # en dash
        "98765\u201443210",  # em dash
        "98765\u221243210",  # minus sign
        "98765\u201043210",  # hyphen
        "98765/43210",
        "\uff19\uff18\uff17\uff16\uff15\uff14\uff13\uff12\uff11\uff10",  # full-width digits
        "\uff0b\uff19\uff11 98765 43210",  # full-width plus
        "\u096f\u096e\u096d\u096c\u096b\u096a\u0969\u0968\u0967\u0966",  # Devanagari digits
        "\u0669\u0668\u0667\u0666\u0665\u0664\u0663\u0662\u0661\u0660",  # Arabic-Indic digits
        "'+91 98765 43210",  # a spreadsheet's mark that the cell is text
        "\u200e+91 98765 43210\u200f",  # direction marks, from a copy and paste
        "\ufeff9876543210",  # a byte order mark at the start of a file's first row
    ],
)
def test_formatting_spreadsheets_produce_is_accepted(raw):
    assert NumberNormaliser("+91").normalise(raw) == "+919876543210"


def test_a_national_number_without_a_prefix_is_refused_as_such():
    """Callers count these apart: a list of them is a missing --prefix, not bad numbers."""
    with pytest.raises(NoCountryCode) as caught:
        NumberNormaliser(None).normalise("98765 43210")
    assert caught.value.reason == "has no country code and no prefix was given"
    assert caught.value.raw == "98765 43210"
    assert isinstance(caught.value, InvalidNumber)


def test_a_number_with_its_country_code_needs_no_prefix():
    assert NumberNormaliser(None).normalise("0044 7911 123456") == "+447911123456"


def test_the_numbers_benchmark_runs(capsys):
    """Timings are the benchmark's business: this only checks that it runs and prints its ratio."""
    assert bench_numbers.main(["--numbers", "50", "--repeat", "1"]) == 0
    assert re.search(r"phonenumbers +[0-9.]+ us/number", capsys.readouterr().out)


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


@pytest.mark.parametrize(
    ("raw", "control"),
    [
        ("9876543210\x1f", "\x1f"),
        ("\x1c9876543210", "\x1c"),
        ("9876543210\x85", "\x85"),
        ("98765\x1e43210", "\x1e"),
        ("+91 98765\x1d43210", "\x1d"),
    ],
)
def test_a_number_with_a_control_character_is_invalid_whatever_str_strip_would_make_of_it(raw, control):
    """`str.strip` and `str.isspace` take \\x1c-\\x1f and \\x85 for white space: still refused."""
    normaliser = NumberNormaliser("+91")
    with pytest.raises(InvalidNumber) as invalid:
        normaliser.normalise(raw)
    assert invalid.value.reason == f"has {control!r}"
    assert normaliser.normalise_all(["9876543211", raw]) is None  # read one by one, to say why


@pytest.mark.parametrize(
    "cell",
    ["0151/23456782", "98765\u00a043211", "\uff19\uff18\uff17\uff16\uff15\uff14\uff13", "'+49 151 23456782"],
)
def test_a_cell_in_any_form_the_normaliser_accepts_reads_as_a_number(cell):
    assert reads_as_number(cell)


@pytest.mark.parametrize("cell", ["110001", "Flat 4/12", "12-B", "", "+", "98765 43210 ext 2"])
def test_a_cell_with_too_few_digits_or_other_text_reads_as_no_number(cell):
    assert not reads_as_number(cell)
