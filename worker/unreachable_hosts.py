"""Receivers that do not answer, remembered for a moment: after a callback to a host fails to connect or
times out, the sender's other callbacks to it fail the same way at once for `QUIET_S` rather than each
waiting out the timeout, so that one dead receiver does not take the sender's passes from everyone's."""

from __future__ import annotations

import time
from collections.abc import Callable

QUIET_S = 30.0


class UnreachableHosts:
    """Hosts of this process's sender that failed to connect or timed out, each with why, until `QUIET_S`
    after its last failure; a host that answers anything (even an error) is reachable again."""

    def __init__(self, quiet_s: float = QUIET_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.quiet_s, self._clock = quiet_s, clock
        self._failed: dict[str, tuple[float, str]] = {}

    def why(self, host: str) -> str | None:
        """Why the host is taken for unreachable now (its last failure); None when it is not."""
        failed = self._failed.get(host)
        if failed is None:
            return None
        if self._clock() < failed[0]:
            return failed[1]
        del self._failed[host]
        return None

    def failed(self, host: str, reason: str) -> None:
        self._failed[host] = (self._clock() + self.quiet_s, reason)

    def answered(self, host: str) -> None:
        self._failed.pop(host, None)
