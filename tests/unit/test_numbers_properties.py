"""The normaliser against Google's libphonenumber (`phonenumbers`), over valid numbers of many
countries written in the ways people and spreadsheets write them.

The reference here uses phonenumbers alone: `parse` with the prefix's region, `is_valid_number`,
`format_number(E164)`, with Kaleyra's two rules on top (a leading "00" is "+"; digits that start
with the country code may carry it) and the rule of `producer.numbers` for digits that read validly
both ways.
"""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneMetadata, PhoneNumberFormat, PhoneNumberType

from producer.numbering import plan
from producer.numbers import InvalidNumber, NumberNormaliser

REGIONS = ["IN", "US", "GB", "DE", "IT", "FR", "BR", "ID", "AE", "AU", "MX", "NG", "ZA", "SG", "JP", "ES",
           "RU", "KZ", "CN", "NL", "CA", "AR"]  # fmt: skip
TYPES = [PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]
TAKES_SMS = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
DEVANAGARI = str.maketrans("0123456789", "०१२३४५६७८९")
PROPERTIES = settings(derandomize=True, max_examples=150, deadline=None)


def _number(cc: int, nsn: str) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(f"+{cc}{nsn}")


def _fits(number: phonenumbers.PhoneNumber) -> bool:
    """Valid, and as E.164 holds it: 7 to 15 digits (phonenumbers finds some of 6 and 16-19 valid)."""
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(number) and 7 <= len(e164) - 1 <= 15


@st.composite
def valid_numbers(draw) -> phonenumbers.PhoneNumber:
    """An example number of a region and type with digits after its first two or three varied."""
    region = draw(st.sampled_from(REGIONS))
    example = phonenumbers.example_number_for_type(region, draw(st.sampled_from(TYPES)))
    nsn = phonenumbers.national_significant_number(example)
    kept = draw(st.integers(2, 3))
    digits = draw(st.text("0123456789", min_size=len(nsn) - kept, max_size=len(nsn) - kept))
    for candidate in (nsn[:kept] + digits, nsn[: len(nsn) - 3] + digits[-3:], nsn):
        number = _number(example.country_code, candidate)  # the last two: a near one, the example
        if _fits(number) and phonenumbers.national_significant_number(number) == candidate:
            return number
    raise AssertionError(f"no valid number near {nsn} of {region}")


def written_forms(number: phonenumbers.PhoneNumber) -> list[tuple[str, str]]:
    """Ways of writing `number`, each with the digits it says (a "+" for a "+" of any width)."""
    cc, nsn = str(number.country_code), phonenumbers.national_significant_number(number)
    trunk = _main(number.country_code).national_prefix or ""
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    groups = _groups(international)[1:] or [nsn]
    first, rest = groups[0], "".join(groups[1:])
    forms = [
        (nsn, nsn),
        (f"+{cc}{nsn}", f"+{cc}{nsn}"),
        (f"00{cc}{nsn}", f"00{cc}{nsn}"),
        (f"{cc}{nsn}", f"{cc}{nsn}"),
        (international, f"+{cc}{nsn}"),
        (national, "".join(filter(str.isdigit, national))),
        ("-".join(groups), nsn),
        ("+" + ".".join([cc, *groups]), f"+{cc}{nsn}"),
        (".".join(groups), nsn),
        (f"(+{cc}) " + " ".join(groups), f"+{cc}{nsn}"),
        (f"+{cc}\u00a0" + "\u00a0".join(groups), f"+{cc}{nsn}"),
        (trunk + "\u202f".join(groups), trunk + nsn),
        ("\u2013".join(groups), nsn),
        (f"+{cc}\u2014" + "\u2014".join(groups), f"+{cc}{nsn}"),
        (trunk + "\u2212".join(groups), trunk + nsn),
        (f"{trunk}{first}/{rest}" if rest else f"{trunk}/{first}", trunk + nsn),
        (nsn.translate(FULL_WIDTH), nsn),
        (f"＋{cc.translate(FULL_WIDTH)} {nsn.translate(FULL_WIDTH)}", f"+{cc}{nsn}"),
        (nsn.translate(ARABIC_INDIC), nsn),
        ((trunk + nsn).translate(DEVANAGARI), trunk + nsn),
        (f"  +{cc}{nsn} \r\n", f"+{cc}{nsn}"),
        ("\t".join([f"+{cc}", *groups]), f"+{cc}{nsn}"),
        (f"'+{cc} " + " ".join(groups), f"+{cc}{nsn}"),
        (f"00 {cc} " + " ".join(groups), f"00{cc}{nsn}"),
        (f"[{trunk}{first}] " + " ".join(groups[1:]), trunk + nsn),
    ]
    if trunk:
        forms.append((trunk + nsn, trunk + nsn))
    if trunk == "0":  # "+44 (0)7911 123456": the trunk 0 shown in brackets after the country code
        forms += [(f"+{cc} (0){nsn}", f"+{cc}0{nsn}"), (f"+{cc} (0) " + " ".join(groups), f"+{cc}0{nsn}")]
    return forms


def _groups(text: str) -> list[str]:
    return "".join(c if c.isdigit() else " " for c in text).split()


def _main(cc: int) -> PhoneMetadata:
    return PhoneMetadata.metadata_for_region(phonenumbers.region_code_for_country_code(cc))


def _read(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    return number if _fits(number) else None


def readings(said: str, cc: int) -> tuple[phonenumbers.PhoneNumber | None, phonenumbers.PhoneNumber | None]:
    """libphonenumber's reading of the digits `said` with the prefix of `cc`, and Kaleyra's other
    reading where there is one ("00" as "+"; digits that start with the country code carrying it)."""
    region = phonenumbers.region_code_for_country_code(cc)
    if said.startswith("+"):
        return _read(said, None), None
    if said.startswith("00"):
        return _read(said, region), _read("+" + said[2:], None)
    return _read(said, region), _read("+" + said, None) if said.startswith(str(cc)) else None


def expected(said: str, cc: int) -> str | None:
    """What the normaliser must make of the digits `said` with the prefix of `cc`: None, refused."""
    national, other = readings(said, cc)
    if said.startswith("00"):
        chosen = other or national  # Kaleyra's "00" first
    elif national is None or other is None or national == other:
        chosen = national or other
    else:  # both valid: the one a text message can reach; else by the trunk prefix (see numbers.py)
        sms = [phonenumbers.number_type(n) in TAKES_SMS for n in (national, other)]
        trunk = _main(cc).national_prefix
        chosen = (national if sms[0] else other) if sms[0] != sms[1] else (other if trunk else national)
    return None if chosen is None else phonenumbers.format_number(chosen, PhoneNumberFormat.E164)


def ambiguous(said: str, cc: int) -> bool:
    """Both readings valid and different: only one of them can be the number that was written."""
    national, other = readings(said, cc)
    return national is not None and other is not None and national != other


def _normalised(prefix: str | None, raw: str) -> str | None:
    try:
        return NumberNormaliser(prefix).normalise(raw)
    except InvalidNumber:
        return None


ISSUE_EXAMPLES = [
    _number(49, "15123456789"),
    _number(62, "81234567890"),
    _number(55, "11912345678"),
    _number(971, "501234567"),
    _number(39, "3931234567"),
    _number(39, "3901234567"),
    _number(39, "3971234567"),
    _number(39, "3906123456"),
    _number(91, "9876543210"),
    _number(1, "4155552671"),
]


@settings(PROPERTIES, max_examples=300)
@given(valid_numbers())
@example(ISSUE_EXAMPLES[0]).via("the issue's +49 (0)15123456789")
@example(ISSUE_EXAMPLES[1]).via("ID's trunk 0")
@example(ISSUE_EXAMPLES[2]).via("BR's trunk 0")
@example(ISSUE_EXAMPLES[3]).via("AE's trunk 0")
@example(ISSUE_EXAMPLES[4]).via("an Italian 393 mobile")
@example(ISSUE_EXAMPLES[5]).via("an Italian 390 mobile")
@example(ISSUE_EXAMPLES[6]).via("an Italian 397 mobile")
@example(ISSUE_EXAMPLES[7]).via("an Italian 390 mobile that is also Rome's 06 123456")
@example(ISSUE_EXAMPLES[8])
@example(ISSUE_EXAMPLES[9])
def test_every_written_form_reads_as_libphonenumber_reads_it(number):
    cc = number.country_code
    prefix, truth = f"+{cc}", phonenumbers.format_number(number, PhoneNumberFormat.E164)
    forms = written_forms(number)
    assert len(forms) >= 20
    for raw, said in forms:
        assert _normalised(prefix, raw) == expected(said, cc), (raw, said)
        if not ambiguous(said, cc):  # read one way only, it is the number that was written
            assert expected(said, cc) == truth, (raw, said)


@PROPERTIES
@given(valid_numbers())
def test_what_libphonenumber_reads_as_valid_as_written_the_normaliser_reads_alike(number):
    """phonenumbers.parse of the written form itself, where it finds it valid and Kaleyra's rules
    read it no other way."""
    cc = number.country_code
    region = phonenumbers.region_code_for_country_code(cc)
    for raw, said in written_forms(number):
        theirs = _read(raw, region)
        if theirs is not None and not said.startswith("00") and not ambiguous(said, cc):
            assert _normalised(f"+{cc}", raw) == phonenumbers.format_number(theirs, PhoneNumberFormat.E164)


@PROPERTIES
@given(valid_numbers(), st.sampled_from([None, "+91", "+1", "+44", "+39", "+49"]))
def test_normalisation_is_idempotent(number, prefix):
    for raw, _ in written_forms(number):
        once = _normalised(prefix, raw)
        if once is not None:
            assert NumberNormaliser(prefix).normalise(once) == once


@PROPERTIES
@given(valid_numbers())
@example(ISSUE_EXAMPLES[0])
@example(ISSUE_EXAMPLES[4])
def test_every_written_form_of_a_suppressed_number_is_suppressed(number):
    """The suppression list holds E.164: a number is caught in any form that reads one way only,
    normalised with the prefix of its country, because each form reads as the same E.164."""
    cc = number.country_code
    forms = [raw for raw, said in written_forms(number) if not ambiguous(said, cc)]
    assert {_normalised(f"+{cc}", raw) for raw in forms} == {
        phonenumbers.format_number(number, PhoneNumberFormat.E164)
    }


@pytest.mark.parametrize("code", sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
def test_the_fast_path_finds_valid_what_libphonenumber_finds_valid(code):
    """`Plan.valid` against `is_valid_number`, digit string by digit string, for every calling code:
    its examples with digits changed, and random digits of every length."""
    rng = random.Random(code)
    country = plan(str(code))
    assert country is not None
    examples = [phonenumbers.national_significant_number(n) for n in _examples(code)]
    for _ in range(60):
        if examples and rng.random() < 0.8:
            nsn = rng.choice(examples)
            changed = rng.randint(1, len(nsn))
            nsn = nsn[:-changed] + "".join(rng.choices("0123456789", k=changed))
        else:
            nsn = "".join(rng.choices("0123456789", k=rng.randint(2, 17)))
        number = _as_given(code, nsn)
        theirs = _fits(number) and phonenumbers.national_significant_number(number) == nsn
        assert bool(country.valid.fullmatch(nsn)) == theirs, nsn


@PROPERTIES
@given(
    st.sampled_from([*REGIONS, "GG", "VA", "AG", "HU", "AT"]),
    st.sampled_from(["", "", "0", "00", "1", "8", "CC", "CC0", "0CC"]),
    st.text("0123456789", min_size=1, max_size=14),
)
def test_plain_digits_of_any_shape_read_as_libphonenumber_reads_them(region, lead, digits):
    """The fast path where it is certain, `phonenumbers.parse` elsewhere: the same answers."""
    cc = phonenumbers.country_code_for_region(region)
    raw = lead.replace("CC", str(cc)) + digits
    assert _normalised(f"+{cc}", raw) == expected(raw, cc)
    assert plan(str(cc)).national(raw) in (None, expected(raw, cc))


def _as_given(code: int, nsn: str) -> phonenumbers.PhoneNumber:
    """Country code `code` and national significant number `nsn`, leading zeros kept, unparsed."""
    number = phonenumbers.PhoneNumber(country_code=code, national_number=int(nsn))
    zeros = len(nsn) - len(nsn.lstrip("0"))
    if zeros and len(nsn) > 1:
        number.italian_leading_zero = True
        number.number_of_leading_zeros = min(zeros, len(nsn) - 1)
    return number


def _examples(code: int) -> list[phonenumbers.PhoneNumber]:
    found = []
    for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
        if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
            found.append(phonenumbers.example_number_for_non_geo_entity(code))
            continue
        found += [phonenumbers.example_number_for_type(region, kind) for kind in range(11)]
    return [n for n in found if n is not None]
