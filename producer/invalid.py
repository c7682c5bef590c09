"""A list's invalid numbers: found as the rows are read, counted with their likely cause, and a
list that is mostly invalid refused (`CAMPAIGN_MAX_INVALID`, `--max-invalid`) before anything of
it is published: a third of a list skipped is a mistake (no `--prefix`, the wrong column), not a
few typos.
"""

from __future__ import annotations

import collections
from typing import NamedTuple

from producer.numbers import InvalidNumber, NoCountryCode, NumberNormaliser
from schemas.errors import SpecError
from schemas.settings import Settings
from schemas.template import CONTROL


class Allowance(NamedTuple):
    """The largest share of a list's rows that may be invalid, and where that share was set."""

    share: float
    source: str  # "CAMPAIGN_MAX_INVALID" or "--max-invalid"

    @classmethod
    def of(cls, settings: Settings, max_invalid: float | None = None) -> Allowance:
        """`max_invalid` (the command's `--max-invalid`) if given, else the setting."""
        if max_invalid is None:
            return cls(settings.max_invalid, "CAMPAIGN_MAX_INVALID")
        return cls(max_invalid, "--max-invalid")


def printable(value: str) -> str:
    """`value` with its control characters escaped (`\\x00`), to store and show as it was given."""
    return CONTROL.sub(lambda found: repr(found[0])[1:-1], value) if CONTROL.search(value) else value


class Tally:
    """The rows of a list and its invalid numbers, with their reasons, as they are read."""

    def __init__(self, prefix: str | None) -> None:
        self.prefix = prefix
        self.rows = self.invalid = self.national = 0
        self.reasons: collections.Counter[str] = collections.Counter()

    def count_invalid(self, error: InvalidNumber) -> None:
        self.invalid += 1
        if isinstance(error, NoCountryCode):
            self.national += 1
        else:
            self.reasons[error.reason] += 1

    def count_page(self, normaliser: NumberNormaliser, raws: list[str]) -> None:
        """Rows as their numbers as given, a page at a time: at once where `normalise_all` can."""
        self.rows += len(raws)
        if normaliser.normalise_all(raws) is not None:
            return
        for raw in raws:
            try:
                normaliser.normalise(raw)
            except InvalidNumber as e:
                self.count_invalid(e)

    def refuse_if_over(self, allowance: Allowance) -> None:
        """`SpecError` if more than the allowed share of the rows are invalid, naming the share and
        the likely cause; whatever the list's size (a 3-row list with 1 invalid is a third)."""
        rows, invalid = self.rows, self.invalid
        if not invalid or invalid <= allowance.share * rows * (1 + 1e-9):  # 0.29 * 100 is 28.999...
            return
        needed = -(-invalid * 100 // rows)  # the whole percentage that allows it
        raise SpecError(
            f"{invalid:,} of {rows:,} rows ({_percent(invalid / rows, allowance.share)}) are invalid "
            f"numbers, more than {allowance.source} ({_percent(allowance.share)}); likely cause: "
            f"{self._cause()}; --max-invalid {needed}% allows it"
        )

    def _cause(self) -> str:
        if self.national and self.national >= max(self.reasons.values(), default=0):
            return f"no --prefix: {_count(self.national, 'national number')}"
        reason, count = self.reasons.most_common(1)[0]
        shown = f"{_count(count, 'row')} {reason!r}"
        return (
            f"{shown}: is --prefix {self.prefix} right?" if self.prefix and self.prefix in reason else shown
        )


def _count(n: int, thing: str) -> str:
    return f"{n:,} {thing}" if n == 1 else f"{n:,} {thing}s"


def _percent(share: float, *others: float) -> str:
    """`share` as a percentage, with as many decimals as it takes to differ from `others`."""
    for decimals in range(1, 4):
        shown = f"{share * 100:.{decimals}f}".rstrip("0").rstrip(".")
        if all(shown != f"{other * 100:.{decimals}f}".rstrip("0").rstrip(".") for other in others):
            return shown + "%"
    return shown + "%"
