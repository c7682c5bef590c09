"""Country calling codes' numbering plans, compiled from phonenumbers' metadata so that plain digits
are read without `phonenumbers.parse`, exactly as it would read them, or not at all (None: parse).

`Plan.valid` is one regular expression per calling code that accepts what
`phonenumbers.is_valid_number` accepts (and E.164 can hold: 7 to 15 digits): for each region of the
code, in libphonenumber's order, the general pattern and any type's pattern (premium, toll-free,
..., fixed line, mobile), each at its possible lengths; a region with leading digits (AG's 268
under +1) decides for the numbers that start with them. The tests check it against
`is_valid_number` digit string by digit string.
"""

from __future__ import annotations

import functools
import re

import phonenumbers
from phonenumbers import PhoneMetadata

E164_DIGITS = range(7, 16)  # country code and national number; phonenumbers finds 6 to 19 valid
# The types libphonenumber's number_type tries before fixed line and mobile, in its order.
_OTHER_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan", "voicemail"
)  # fmt: skip
_SUBSCRIBER_TYPES = ("mobile", "fixed_line", "voip", "personal_number")


class Plan:
    """What the fast path needs of calling code `code` ("91"): see the module's docstring."""

    def __init__(self, code: str, regions: list[str]) -> None:
        metadata = [m for m in map(functools.partial(_metadata, code), regions) if m is not None]
        main = metadata[0]
        self.code = code
        self.region: str | None = (
            None if regions[0] == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY else regions[0]
        )
        self.trunk_prefix: str | None = main.national_prefix or None  # dialled before national numbers
        fitting = {n for n in _subscriber_lengths(metadata) if n + len(code) in E164_DIGITS}
        self.lengths = frozenset(fitting or range(1, E164_DIGITS.stop - len(code)))  # for reasons
        self._e164 = "+" + code
        shortest, longest = max(1, E164_DIGITS.start - len(code)), E164_DIGITS.stop - 1 - len(code)
        fits = rf"(?=\d{{{shortest},{longest}}}$)"  # \d: 0-9 only, with re.ASCII
        valid = _regions_pattern(metadata, _valid_in)
        self.valid = re.compile(f"{fits}(?:{valid})", re.ASCII)
        self._valid = self.valid.fullmatch
        # The same over a page, a line each: atomic, so that a line that fails never sends the engine
        # back through the others' alternatives.
        self._valid_page = re.compile(f"(?:(?>{fits}(?:{valid}))\n)*+", re.ASCII | re.MULTILINE).fullmatch
        self.takes_sms = re.compile(_regions_pattern(metadata, _takes_sms_in, first=True), re.ASCII)
        idd = main.international_prefix
        self._idd = re.compile(idd, re.ASCII) if idd and idd != "00" else None  # "00": Kaleyra's rule first
        npp = main.national_prefix_for_parsing
        self._npp = re.compile(npp, re.ASCII) if npp else None
        self._transforms = bool(main.national_prefix_transform_rule)
        self._trunk = npp if npp and npp.isdigit() and not self._transforms else None  # plain digits
        # A line of a page that `national` would not read as plain national digits: any, unless the
        # national prefix for parsing is absent or plain digits (a pattern could match anywhere).
        starts = [re.escape(start) for start in ("00", code, self._trunk or "") if start]
        if idd and idd != "00":
            starts.append(f"(?:{idd})")
        plain = npp is None or self._trunk is not None
        self._plain = re.compile(f"^(?:{'|'.join(starts)})", re.ASCII | re.MULTILINE) if plain else None

    def national(self, digits: str) -> str | None:
        """E.164 of national `digits` as libphonenumber reads them with this plan's region, and
        Kaleyra's rule (they may carry the code), when certain and valid; else None ("00...": None)."""
        if digits[:2] == "00" or (self._idd is not None and self._idd.match(digits)):
            return None
        if not digits.startswith(self.code):
            nsn = self._valid_nsn(digits)
            return None if nsn is None else self._e164 + nsn
        rest = digits[len(self.code) :]
        if self._trunk == self.code:  # +1's 1: stripped as a trunk prefix or as the country code alike
            certain = not rest.startswith(self.code) and not self._valid(digits) and self._valid(rest)
            return self._e164 + rest if certain else None
        if self._npp is not None and self._npp.match(digits):
            return None
        carrying = self._valid_nsn(rest)
        if carrying is not None and self._npp is not None and self._npp.match(carrying):
            return None  # libphonenumber would strip a trunk prefix twice
        if not self._valid(digits):
            return None if carrying is None else self._e164 + carrying
        if carrying is None:  # as national only, unless "+" and the digits may be valid some other way
            return None if self._may_be_valid(rest) else self._e164 + digits
        takes_sms = self.takes_sms.fullmatch
        national = self.prefers_national(bool(takes_sms(digits)), bool(takes_sms(carrying)))
        return self._e164 + (digits if national else carrying)

    def prefers_national(self, national_takes_sms: bool, carrying_takes_sms: bool) -> bool:
        """Which of two valid readings of digits that start with the country code to take: the one a
        text message can reach; else, in a country that dials its national numbers after a trunk
        prefix, the one carrying the code (a national number would have been written with it)."""
        if national_takes_sms != carrying_takes_sms:
            return national_takes_sms
        return not self.trunk_prefix

    def international(self, nsn: str) -> str | None:
        """E.164 of "+", this code and `nsn`, as libphonenumber reads it, when certain and valid."""
        valid = self._valid_nsn(nsn)
        return None if valid is None else self._e164 + valid

    def all_national(self, numbers: list[str]) -> list[str] | None:
        """`national` of each of `numbers`, or None as soon as one is not certain and valid."""
        if self._plain is not None and not self._plain.search("\n".join(numbers)):
            # None starts as a trunk prefix, the code, "00" or an international prefix may: `national`
            # of each is then `valid` of it as it is, checked without a Python step per number.
            valid = self._valid_page("\n".join(numbers) + "\n") is not None
            return list(map(self._e164.__add__, numbers)) if valid else None
        national, found = self.national, []
        for number in numbers:
            if (e164 := national(number)) is None:
                return None
            found.append(e164)
        return found

    def wrong_length(self, national: int) -> str | None:
        """What is wrong with a national significant number of `national` digits, if its length."""
        if national < min(self.lengths):
            return f"too short for +{self.code}"
        if national > max(self.lengths):
            return f"too long for +{self.code}"
        return None if national in self.lengths else f"wrong length for +{self.code}"

    def _valid_nsn(self, digits: str) -> str | None:
        """The national significant number libphonenumber reads from `digits` (no "+" or code before
        them) if it is valid and certain: a trunk prefix goes when what follows it is valid."""
        if self._trunk is not None:
            if digits.startswith(self._trunk):
                digits = digits[len(self._trunk) :]
        elif self._npp is not None and (found := self._npp.match(digits)) is not None:
            if self._transforms and (not found.groups() or found.groups()[-1] is not None):
                return None
            digits = digits[found.end() :]
        return digits if self._valid(digits) else None

    def _may_be_valid(self, nsn: str) -> bool:
        """Whether "+", the code and `nsn` may be valid (a superset: with or without a trunk prefix)."""
        found = self._npp.match(nsn) if self._npp is not None else None
        return bool(self._valid(nsn) or (found and self._valid(nsn[found.end() :])))


@functools.cache
def plan(code: str) -> Plan | None:
    """The plan of calling code `code` ("91"), or None if there is no such code."""
    if not (code.isdigit() and code.isascii()) or code[0] == "0":
        return None
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(code))
    if not regions or all(_metadata(code, region) is None for region in regions):
        return None
    return Plan(code, list(regions))


def country_code_of(digits: str) -> str | None:
    """The calling code `digits` start with; they are prefix-free, so the first found is the one."""
    for size in (1, 2, 3):
        if plan(digits[:size]) is not None:
            return digits[:size]
    return None


def _metadata(code: str, region: str) -> PhoneMetadata | None:
    if region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY:
        return PhoneMetadata.metadata_for_nongeo_region(int(code))
    return PhoneMetadata.metadata_for_region(region)


def _regions_pattern(metadata: list[PhoneMetadata], region_pattern, *, first: bool = False) -> str:
    """One pattern over the regions of a code, each region's from `region_pattern(metadata)` (None: it
    has no numbers), as libphonenumber picks the region of a number: a region with leading digits
    (AG's 268 under +1) takes the numbers that start with them, valid or not; otherwise, with
    `first`, the first region the number is valid in, else any."""
    alternatives, earlier = [], ""
    for region in metadata:
        lead, pattern = region.leading_digits, region_pattern(region)
        if pattern is not None:
            alternatives.append(f"{earlier}{f'(?={lead})' if lead else ''}{pattern}")
        if lead:
            earlier += f"(?!{lead})"
        elif first and (valid := _valid_in(region)) is not None:
            earlier += f"(?!{valid})"
    return "|".join(alternatives) or "(?!)"


def _valid_in(region: PhoneMetadata) -> str | None:
    """libphonenumber's `_number_type_helper(...) != UNKNOWN` (any order will do: mobiles first)."""
    general = _desc_pattern(region.general_desc)
    same = region.same_mobile_and_fixed_line_pattern  # then libphonenumber never tries mobile's
    names = ("fixed_line", *_OTHER_TYPES) if same else ("mobile", "fixed_line", *_OTHER_TYPES)
    kinds = "|".join(kind for kind in map(_desc_pattern, (getattr(region, n) for n in names)) if kind)
    return f"(?={general})(?:{kinds})" if general and kinds else None


def _takes_sms_in(region: PhoneMetadata) -> str | None:
    """libphonenumber's `_number_type_helper` is MOBILE or FIXED_LINE_OR_MOBILE."""
    general = _desc_pattern(region.general_desc)
    mobile = _desc_pattern(region.fixed_line if region.same_mobile_and_fixed_line_pattern else region.mobile)
    others = "|".join(kind for kind in map(_desc_pattern, (getattr(region, n) for n in _OTHER_TYPES)) if kind)
    if not (general and mobile):
        return None
    return f"(?={general})" + (f"(?!{others})" if others else "") + f"(?:{mobile})"


def _desc_pattern(desc) -> str | None:
    """What libphonenumber's _is_number_matching_desc accepts: the whole number, at a possible length."""
    if desc is None or not desc.national_number_pattern:
        return None
    lengths = [n for n in desc.possible_length or () if n > 0]
    if desc.possible_length and not lengths:  # (-1,): no numbers of this type
        return None
    at_length = "(?=(?:" + "|".join(rf"\d{{{n}}}" for n in lengths) + ")$)" if lengths else ""
    return f"{at_length}(?:{desc.national_number_pattern})$"


def _subscriber_lengths(metadata: list[PhoneMetadata]) -> set[int]:
    """Lengths of the numbers a message can go to (toll-free and premium lengths would say "wrong
    length" less often, and less helpfully); a code with none of those: its general lengths."""
    subscribers = [getattr(m, name) for m in metadata for name in _SUBSCRIBER_TYPES]
    general = [m.general_desc for m in metadata]
    return _lengths(subscribers) or _lengths(general)


def _lengths(descs: list) -> set[int]:
    return {n for desc in descs if desc is not None for n in desc.possible_length or () if n > 0}
