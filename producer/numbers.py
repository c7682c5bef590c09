"""Recipient phone numbers to E.164 (`+` then digits), as Google's libphonenumber reads them, with
Kaleyra's two rules on top: a leading "00" is "+", and digits that start with the prefix's country
code may carry it (919876543210 with +91).

A prefix such as "+91" applies only to numbers that carry no country code. Most rows are plain
digits that can be read one way only; those take the fast path: one regular expression per country
calling code (`numbering.Plan`) that says what `phonenumbers.is_valid_number` would. The rest (a
number that starts with its country code at a length it could carry it, an unusual trunk prefix,
anything not valid) are read by `phonenumbers.parse`.

Which reading when both are valid: "3906123456" with +39 is the mobile 390 612 3456 or Rome's
06 123456. The one a text message can reach (a mobile) wins; when both or neither can, a country
whose national numbers are dialled with a trunk prefix (DE's 0) reads the digits as carrying the
country code, since a national number would have been written with its 0; a country with none
(IT) reads them as national, as libphonenumber does. A number libphonenumber finds possible but not
valid (+1 015 555 2671, an unassigned range) is refused: "not a valid number for +1".

A number with a control character (C0 but tab, CR and LF; DEL; C1) is refused ("has '\\x1f'"),
whatever the rest of it reads as: `str.strip` and `str.isspace` take \\x1c-\\x1f and \\x85 for white
space, and none of them is part of a number.
"""

from __future__ import annotations

import unicodedata

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

from producer.numbering import E164_DIGITS, Plan, country_code_of, plan
from schemas.errors import CampaignError
from schemas.template import CONTROL

NO_COUNTRY_CODE = "has no country code and no prefix was given"
_TAKES_SMS = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


class InvalidNumber(CampaignError, ValueError):
    """A recipient number we cannot send to; `reason` is short, e.g. "too short for +91".

    The message is the reason alone: the number itself is in `raw`, for callers that
    decide whether to log it in full or masked.
    """

    def __init__(self, reason: str, raw: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.raw = raw


class NoCountryCode(InvalidNumber):
    """A national number in a list given without a prefix: most of such a list, when it happens."""

    def __init__(self, raw: str) -> None:
        super().__init__(NO_COUNTRY_CODE, raw)


def is_country_code(prefix: str) -> bool:
    """True for a known country calling code written with its `+`: "+91", "+1", "+882"."""
    return prefix[:1] == "+" and plan(prefix[1:]) is not None


class NumberNormaliser:
    """Normalises numbers from one file; `prefix` ("+91" or None) goes on national numbers."""

    def __init__(self, prefix: str | None) -> None:
        self._plan: Plan | None = None
        if prefix is not None:
            if not is_country_code(prefix):
                raise ValueError(f"prefix {prefix!r} is not a known country calling code such as '+91'")
            self._plan = plan(prefix[1:])

    def normalise(self, raw: str) -> str:
        """E.164 for `raw`, e.g. "+919876543210"; raises InvalidNumber saying why not."""
        digits = raw.strip()
        plain = digits.isdigit() and digits.isascii()
        if not plain or len(digits) != len(raw):  # plain digits, nothing stripped: no control character
            _refuse_control(raw)
        if not plain:  # the fast path is plain digits, or "+" and them
            if not (digits[:1] == "+" and digits[1:].isdigit() and digits.isascii()):
                digits = _without_formatting(digits, raw)
            if digits[:1] == "+":
                return _international(digits[1:], raw)
        if digits[:2] == "00":
            return _after_00(digits, raw, self._plan)
        if self._plan is None:
            raise NoCountryCode(raw)
        return self._plan.national(digits) or _national(digits, raw, self._plan)

    def normalise_all(self, raws: list[str]) -> list[str] | None:
        """`normalise` of each of `raws` when each is plain digits the fast path reads with certainty
        and finds valid; else None, as soon as one is not (normalise them one by one, which also
        says what is wrong with any)."""
        if self._plan is None or not raws:
            return None
        page = "".join(raws)  # a control character anywhere: each row alone says which is invalid
        if not page.isprintable() and CONTROL.search(page):  # isprintable: the fast way out
            return None
        return self._plan.all_national(list(map(str.strip, raws)))


def reads_as_number(text: str) -> bool:
    """Whether `text` is what `normalise` would read as the digits of a number (formatting aside),
    7 of them or more (E.164's shortest): a CSV cell that reads as a number, in any form accepted."""
    digits = _digits(text.strip())
    return digits is not None and len(digits) - (digits[:1] == "+") >= E164_DIGITS.start


def _refuse_control(raw: str) -> None:
    if not raw.isprintable() and (control := CONTROL.search(raw)):  # isprintable: the fast way out
        raise InvalidNumber(f"has {control[0]!r}", raw)


def _international(digits: str, raw: str) -> str:
    """`digits` followed a "+": the country code comes first."""
    code = country_code_of(digits)
    if code is None:
        raise InvalidNumber("unknown country code", raw)
    country = plan(code)
    assert country is not None
    found = country.international(digits[len(code) :])
    if found is not None:
        return found
    number = _read("+" + digits, None)
    if number is None:
        raise InvalidNumber(_why_not("+" + digits, None, country), raw)
    return _e164(number)


def _after_00(digits: str, raw: str, country: Plan | None) -> str:
    """Kaleyra reads a leading "00" as "+"; where that reading is not valid and the prefix's
    country dials abroad some other way (AU's 0011), libphonenumber's reading of it."""
    try:
        return _international(digits[2:], raw)
    except InvalidNumber:
        if country is None or country.region is None or (number := _read(digits, country.region)) is None:
            raise
        return _e164(number)


def _national(digits: str, raw: str, country: Plan) -> str:
    """The slow path: libphonenumber's reading of `digits` with the prefix's region, or, for digits
    that start with the country code, the reading that carries it (see the module's docstring)."""
    text = digits if country.region else f"+{country.code}{digits}"  # a non-geographic code: no region
    national = _read(text, country.region)
    carrying = _read("+" + digits, None) if digits.startswith(country.code) else None
    chosen = _choose(national, carrying, country)
    if chosen is None:
        raise InvalidNumber(_why_not(text, country.region, country), raw)
    return _e164(chosen)


def _choose(
    national: phonenumbers.PhoneNumber | None, carrying: phonenumbers.PhoneNumber | None, country: Plan
) -> phonenumbers.PhoneNumber | None:
    """One of two readings of digits that start with the country code (see the module's docstring)."""
    if national is None or carrying is None or national == carrying:
        return national or carrying
    takes_sms = (
        phonenumbers.number_type(national) in _TAKES_SMS,
        phonenumbers.number_type(carrying) in _TAKES_SMS,
    )
    return national if country.prefers_national(*takes_sms) else carrying


def _read(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    """libphonenumber's reading of `text`, if it is a valid number."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException:
        return None
    digits = len(str(number.country_code)) + len(phonenumbers.national_significant_number(number))
    return number if phonenumbers.is_valid_number(number) and digits in E164_DIGITS else None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _why_not(text: str, region: str | None, country: Plan) -> str:
    """Why libphonenumber's reading of `text` is no number to send to: its length, else its digits."""
    try:
        number = phonenumbers.parse(text, region)
    except NumberParseException as e:
        if e.error_type == NumberParseException.INVALID_COUNTRY_CODE:
            return "unknown country code"
        if e.error_type == NumberParseException.TOO_LONG:
            return f"too long for +{country.code}"
        return f"too short for +{country.code}"
    found = plan(str(number.country_code)) or country
    national = len(phonenumbers.national_significant_number(number))
    return found.wrong_length(national) or f"not a valid number for +{found.code}"


class _Formatting(dict[int, str | None]):
    """`str.translate` table, filled as characters are met: what spreadsheets and people put in a
    number (spaces of every width, dashes, dots, brackets, slashes, direction marks) goes, digits of
    any script become ASCII, a full-width plus becomes "+"; anything else stays, to be refused."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        value: str | None
        if char in _PUNCTUATION or char.isspace() or unicodedata.category(char) in ("Pd", "Cf"):
            value = None
        elif (digit := unicodedata.decimal(char, None)) is not None:
            value = str(digit)
        elif char == "\uff0b":
            value = "+"
        else:
            value = char
        self[code] = value
        return value


_PUNCTUATION = frozenset(".()[]/~\u2212\u2053\u223c\u30fc\uff0e\uff08\uff09\uff0f\uff3b\uff3d\uff5e")
_FORMATTING = _Formatting()


def _without_formatting(text: str, raw: str) -> str:
    """`text` as "+" and ASCII digits, or ASCII digits; else InvalidNumber saying what is in the way."""
    digits = _digits(text)
    if digits is not None:
        return digits
    cleaned = _unmarked(text).translate(_FORMATTING)
    raise InvalidNumber(_not_digits(cleaned[1:] if cleaned[:1] == "+" else cleaned, raw), raw)


def _digits(text: str) -> str | None:
    """`text` without its formatting, if that leaves "+" and ASCII digits or ASCII digits; else None."""
    cleaned = _unmarked(text).translate(_FORMATTING)
    rest = cleaned[1:] if cleaned[:1] == "+" else cleaned
    return cleaned if rest.isdigit() and rest.isascii() else None


def _unmarked(text: str) -> str:
    """A leading apostrophe is a spreadsheet's mark that the cell is text, not part of the number."""
    return text[1:] if text[:1] in ("'", "\u2019") else text


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
