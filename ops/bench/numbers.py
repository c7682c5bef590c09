"""`python -m ops.bench.numbers` (`make bench-numbers`): the number normaliser against
`phonenumbers.parse` + `format_number`, on the same numbers in the same run.

The numbers are a list as customers send one: valid mobiles of the prefix's country, mostly plain
national digits, some with the country code (with or without "+"), some formatted by a person or a
spreadsheet. Each way is timed over all of them with time.perf_counter, best of `--repeat`, and
printed per number with the ratio; the machine is shared, so compare ratios, not microseconds.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from producer.numbers import InvalidNumber, NumberNormaliser

PAGE = 1000  # rows a page, as publishing reads them (Settings.job_size)
# (share of the list, how a number is written): nsn is the national significant number, national
# the digits of the country's own national format (with its trunk 0 where it has one).
MIX: list[tuple[float, Callable[[str, str, str], str]]] = [
    (0.70, lambda code, nsn, national: nsn),
    (0.10, lambda code, nsn, national: national),
    (0.08, lambda code, nsn, national: f"+{code}{nsn}"),
    (0.04, lambda code, nsn, national: f"{code}{nsn}"),
    (0.04, lambda code, nsn, national: f"+{code} {nsn[:-5]} {nsn[-5:]}"),
    (0.02, lambda code, nsn, national: f"{national[:-4]}-{national[-4:]}"),
    (0.02, lambda code, nsn, national: f"'+{code}\u00a0{nsn[:-5]}\u2013{nsn[-5:]}"),
]


def realistic_mix(region: str, count: int, seed: int = 1) -> list[str]:
    """`count` valid mobile numbers of `region`, written as `MIX` says."""
    rng = random.Random(seed)
    example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
    assert example is not None, f"phonenumbers has no example mobile of {region}"
    code, nsn = example.country_code, phonenumbers.national_significant_number(example)
    pool: list[phonenumbers.PhoneNumber] = []
    while len(pool) < min(count, 5000):  # varied digits after the example's first three
        digits = nsn[:3] + "".join(rng.choice("0123456789") for _ in nsn[3:])
        number = phonenumbers.parse(f"+{code}{digits}")
        if phonenumbers.is_valid_number(number):
            pool.append(number)
    shares, writers = zip(*MIX, strict=True)
    numbers = []
    for number in rng.choices(pool, k=count):
        written = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
        national = "".join(filter(str.isdigit, written))
        writer = rng.choices(writers, shares)[0]
        numbers.append(writer(str(code), phonenumbers.national_significant_number(number), national))
    return numbers


def _normaliser(prefix: str, numbers: list[str]) -> None:
    normalise = NumberNormaliser(prefix).normalise
    for raw in numbers:
        try:  # noqa: SIM105 (contextlib.suppress would time itself too)
            normalise(raw)
        except InvalidNumber:
            pass


def _pages(prefix: str, numbers: list[str]) -> None:
    """As publishing does: a page at once where it can, else its numbers one by one."""
    normaliser = NumberNormaliser(prefix)
    for start in range(0, len(numbers), PAGE):
        page = numbers[start : start + PAGE]
        if normaliser.normalise_all(page) is None:
            _normaliser(prefix, page)


def _phonenumbers(region: str, numbers: list[str]) -> None:
    parse, format_number, e164 = phonenumbers.parse, phonenumbers.format_number, PhoneNumberFormat.E164
    for raw in numbers:
        try:  # noqa: SIM105
            format_number(parse(raw, region), e164)
        except phonenumbers.NumberParseException:
            pass


def per_number_us(run: Callable[[], None], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / count * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.bench.numbers", description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default="+91", help="the list's country (default: +91)")
    parser.add_argument("--numbers", type=int, default=100_000, help="numbers in the list (default: 100,000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, the best counted (default: 3)")
    args = parser.parse_args(argv)
    region = phonenumbers.region_code_for_country_code(int(args.prefix.lstrip("+")))
    numbers = realistic_mix(region, args.numbers)
    NumberNormaliser(args.prefix).normalise(numbers[0])  # the plan is compiled once per process, not timed
    count, repeat = len(numbers), args.repeat
    one = per_number_us(lambda: _normaliser(args.prefix, numbers), count, repeat)
    paged = per_number_us(lambda: _pages(args.prefix, numbers), count, repeat)
    theirs = per_number_us(lambda: _phonenumbers(region, numbers), count, repeat)
    print(f"{count:,} numbers of {args.prefix} ({region}), mostly plain national digits, best of {repeat}")
    print(f"normaliser      {one:6.2f} us/number  {theirs / one:5.1f}x")
    print(f"normalise_all   {paged:6.2f} us/number  {theirs / paged:5.1f}x  (pages of {PAGE:,}: publishing)")
    print(f"phonenumbers    {theirs:6.2f} us/number  (parse + format_number)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
