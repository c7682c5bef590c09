"""Recipient phone numbers to E.164 (`+` then digits), with Kaleyra's prefix rule.

A prefix such as "+91" applies only to numbers that carry no country code. This
runs once per input row, so it never calls `phonenumbers.parse`: it checks the
length of the national part against phonenumbers' metadata, loaded lazily and
cached per country calling code.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import phonenumbers
from phonenumbers import PhoneMetadata

from schemas.errors import CampaignError

MAX_DIGITS = 15  # E.164, country code included
MIN_DIGITS = 7  # the shortest real numbers (+290 XXXX); also the floor of E.164 in schemas.campaign.Recipient


class InvalidNumber(CampaignError, ValueError):
    """A recipient number we cannot send to; `reason` is short, e.g. "too short for +91".

    The message is the reason alone: the number itself is in `raw`, for callers that
    decide whether to log it in full or masked.
    """

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class _Country(NamedTuple):
    code: str  # the calling code, digits only: "91"
    lengths: frozenset[int]  # national-number lengths we accept
    trunk: str | None  # national (trunk) prefix dialled before national numbers: "0"


def is_country_code(prefix: str) -> bool:
    """True for a known country calling code written with its `+`: "+91", "+1", "+882"."""
    return prefix[:1] == "+" and _country(prefix[1:]) is not None


class NumberNormaliser:
    """Normalises numbers from one file; `prefix` ("+91" or None) goes on national numbers."""

    def __init__(self, prefix: str | None) -> None:
        self._country: _Country | None = None
        # By a national number's length, which readings of it are possible, looked up once per row:
        # (with the country code already, with the trunk prefix, as it is). Other lengths: none.
        self._readings: dict[int, tuple[bool, bool, bool]] = {}
        if prefix is not None:
            if not is_country_code(prefix):
                raise ValueError(f"prefix {prefix!r} is not a known country calling code such as '+91'")
            self._country = country = _country(prefix[1:])
            assert country is not None
            code, lengths, trunk = country
            sizes = {n + len(extra) for n in lengths for extra in (code, trunk or "", "")}
            for size in sizes:
                with_trunk = trunk is not None and size - len(trunk) in lengths
                self._readings[size] = (size - len(code) in lengths, with_trunk, size in lengths)

    def normalise(self, raw: str) -> str:
        """E.164 for `raw`, e.g. "+919876543210"; raises InvalidNumber saying why not."""
        digits = raw.strip()
        if not (digits.isdigit() and digits.isascii()):  # the fast path is plain digits
            if not (digits[1:].isdigit() and digits.isascii()):  # nor "+" and digits
                digits = _without_formatting(digits)
            if digits[:1] == "+":
                digits = digits[1:]
                if not (digits.isdigit() and digits.isascii()):
                    raise InvalidNumber(_not_digits(digits, raw), raw)
                return _international(digits, raw)
            if not (digits.isdigit() and digits.isascii()):
                raise InvalidNumber(_not_digits(digits, raw), raw)
        if digits[:2] == "00":
            return _international(digits[2:], raw)
        return self._national(digits, raw)

    def normalise_all(self, raws: list[str]) -> list[str] | None:
        """`normalise` of each of `raws`, worked out for all at once when they are plain digits of one
        length that can be read one way only, as it is or with the country code, and each is read
        so; else None (normalise them one by one, which also says what is wrong with any)."""
        country = self._country
        if country is None or not raws:
            return None
        numbers = list(map(str.strip, raws))
        lengths = set(map(len, numbers))
        if len(lengths) != 1 or not ((text := "".join(numbers)).isdigit() and text.isascii()):
            return None
        lines = "\n" + "\n".join(numbers)  # each number after a newline: its start can be counted
        code = country.code
        reading = self._readings.get(lengths.pop())
        if reading == (False, False, True) and "\n00" not in lines:  # national ("00": international)
            return list(map(f"+{code}".__add__, numbers))
        if reading == (True, False, False) and lines.count(f"\n{code}") == len(numbers):
            return list(map("+".__add__, numbers))  # with the country code already
        return None

    def _national(self, digits: str, raw: str) -> str:
        country = self._country
        if country is None:
            raise InvalidNumber("has no country code and no prefix was given", raw)
        code, _, trunk = country
        with_code, with_trunk, bare = self._readings.get(len(digits), (False, False, False))
        # Already carries the country code, without its "+": 919876543210 with +91.
        if with_code and digits.startswith(code):
            return "+" + digits
        # Dialled with the trunk prefix: 07911 123456 with +44.
        if with_trunk and trunk and digits.startswith(trunk):
            return "+" + code + digits[len(trunk) :]
        if bare:
            return "+" + code + digits
        raise InvalidNumber(_wrong_length(len(digits), country), raw)


def _international(digits: str, raw: str) -> str:
    """`digits` followed a "+" or "00": the country code comes first."""
    if len(digits) > MAX_DIGITS:
        raise InvalidNumber("too long", raw)
    for size in (1, 2, 3):  # calling codes are prefix-free, so the first match is the only one
        country = _country(digits[:size])
        if country is not None:
            break
    else:
        raise InvalidNumber("unknown country code", raw)
    national = len(digits) - size
    if national in country.lengths:
        return "+" + digits
    # "+44 (0)7911 123456": a trunk prefix written after the country code.
    trunk = country.trunk
    if trunk and digits.startswith(trunk, size) and national - len(trunk) in country.lengths:
        return "+" + country.code + digits[size + len(trunk) :]
    raise InvalidNumber(_wrong_length(national, country), raw)


def _without_formatting(text: str) -> str:
    """`text` without the usual ways people format a number (a chain of replace beats translate)."""
    return (
        text.replace(" ", "")
        .replace("-", "")
        .replace(".", "")
        .replace("(", "")
        .replace(")", "")
        .replace("[", "")
        .replace("]", "")
    )


def _wrong_length(national: int, country: _Country) -> str:
    if national < min(country.lengths):
        return f"too short for +{country.code}"
    if national > max(country.lengths):
        return f"too long for +{country.code}"
    return f"wrong length for +{country.code}"


def _not_digits(digits: str, raw: str) -> str:
    if not raw.strip():
        return "is empty"
    if not digits:
        return "has no digits"
    if any(c.isalpha() for c in digits):
        return "has letters"
    if "+" in digits:
        return "has a '+' that is not at the start"
    bad = next(c for c in digits if not ("0" <= c <= "9"))
    return f"has {bad!r}"


@functools.cache
def _country(code: str) -> _Country | None:
    """The metadata we need for calling code `code` ("91"), or None if there is no such code.

    Lengths are those of mobile and fixed-line numbers (voip and personal numbers too)
    over every region sharing the code; the general lengths would also admit toll-free,
    premium and UAN numbers, which cannot take an SMS and make the rule "already carries
    its country code" ambiguous (India's general lengths are 8-13). A region with none of
    those falls back to its general lengths (non-geographic codes such as +800), and a code
    with no lengths at all accepts whatever fits E.164.
    """
    if not (code.isdigit() and code.isascii()) or code[0] == "0":
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code))
    if not regions:
        return None
    lengths: set[int] = set()
    trunk = None
    for region in regions:
        if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
            metadata = PhoneMetadata.metadata_for_nongeo_region(int(code))
        else:
            metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is None:
            continue
        lengths |= _subscriber_lengths(metadata)
        if region == regions[0]:  # the main country of a shared code, e.g. US for +1
            trunk = metadata.national_prefix
    fits = range(MIN_DIGITS - len(code), MAX_DIGITS - len(code) + 1)
    accepted = frozenset(n for n in lengths if n in fits) or frozenset(fits)
    return _Country(code=code, lengths=accepted, trunk=trunk or None)


def _subscriber_lengths(metadata: PhoneMetadata) -> set[int]:
    descs = (metadata.mobile, metadata.fixed_line, metadata.voip, metadata.personal_number)
    lengths = {n for desc in descs if desc is not None for n in desc.possible_length or () if n > 0}
    if not lengths and metadata.general_desc is not None:
        lengths = {n for n in metadata.general_desc.possible_length or () if n > 0}
    return lengths
