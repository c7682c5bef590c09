"""Faults injected on purpose (E403 replies, added latency, slow replies, a refused key, an outage),
changeable while the app runs."""

from __future__ import annotations

import math
import random
from collections.abc import Awaitable, Callable

import msgspec

from schemas.errors import InputError


def check_rate(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise InputError(f"{name}={value!r} must be a probability between 0 and 1")


def check_ms(name: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0.0):
        raise InputError(f"{name}={value!r} must be a finite number of milliseconds, 0 or more")


class FaultsUpdate(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Body of `PUT /_simulator/faults`; absent fields stay as they are."""

    e403_rate: float | None = None
    latency_ms: float | None = None
    slow_reply_rate: float | None = None
    slow_reply_ms: float | None = None
    seed: int | None = None
    refuse_key: bool | None = None  # every request is answered 401, as if the account's key was revoked
    down_ms: float | None = None  # the port refuses connections this long from now, then serves again


class FaultsView(msgspec.Struct, frozen=True, kw_only=True):
    e403_rate: float
    latency_ms: float
    slow_reply_rate: float
    slow_reply_ms: float
    refuse_key: bool
    down_until: float | None  # monotonic time the outage ends (then the view is read from elsewhere)


UPDATE_DECODER = msgspec.json.Decoder(FaultsUpdate)


class Faults:
    """Mutable on purpose: chaos tests turn faults on and off against a running simulator.

    `latency_ms` is a round trip: every request waits half of it before it is processed, and its
    reply the other half. A slow reply is a fault of its own: the request is accepted and
    recorded, and only its answer is held `slow_reply_ms` (then the return trip).
    """

    __slots__ = (
        "_rng", "down_until", "e403_rate", "go_down", "latency_ms", "refuse_key", "slow_reply_ms",
        "slow_reply_rate",
    )  # fmt: skip

    def __init__(
        self,
        e403_rate: float,
        latency_ms: float,
        seed: int | None,
        *,
        slow_reply_rate: float = 0.0,
        slow_reply_ms: float = 0.0,
    ) -> None:
        self.e403_rate = e403_rate
        self.latency_ms = latency_ms
        self.slow_reply_rate = slow_reply_rate
        self.slow_reply_ms = slow_reply_ms
        self.refuse_key = False
        self.down_until: float | None = None
        # Set by whatever serves the app (it owns the listening socket): take the port down for N ms.
        self.go_down: Callable[[float], Awaitable[None]] | None = None
        self._rng = random.Random(seed)

    def inject_e403(self) -> bool:
        """One draw per request; with rate 0 the generator is not consumed."""
        return self.e403_rate > 0.0 and self._rng.random() < self.e403_rate

    def inject_slow_reply(self) -> bool:
        """One draw per accepted request; with rate 0 the generator is not consumed, so seeded
        E403 sequences are the same as without this fault."""
        return self.slow_reply_rate > 0.0 and self._rng.random() < self.slow_reply_rate

    def update(self, change: FaultsUpdate) -> None:
        """Checks every field before applying any, so a bad update changes nothing."""
        for name in ("e403_rate", "slow_reply_rate"):
            if (rate := getattr(change, name)) is not None:
                check_rate(name, rate)
        for name in ("latency_ms", "slow_reply_ms", "down_ms"):
            if (ms := getattr(change, name)) is not None:
                check_ms(name, ms)
        if change.down_ms and self.go_down is None:
            raise InputError("down_ms needs the simulator served on a port")
        if change.e403_rate is not None:
            self.e403_rate = change.e403_rate
        if change.latency_ms is not None:
            self.latency_ms = change.latency_ms
        if change.slow_reply_rate is not None:
            self.slow_reply_rate = change.slow_reply_rate
        if change.slow_reply_ms is not None:
            self.slow_reply_ms = change.slow_reply_ms
        if change.seed is not None:
            self._rng.seed(change.seed)
        if change.refuse_key is not None:
            self.refuse_key = change.refuse_key

    async def apply(self, change: FaultsUpdate) -> None:
        """`update`, then an outage if one is asked for: returned, the port refuses connections."""
        self.update(change)
        if change.down_ms and self.go_down is not None:  # update() refused down_ms without one
            await self.go_down(change.down_ms)

    def view(self) -> FaultsView:
        return FaultsView(
            e403_rate=self.e403_rate,
            latency_ms=self.latency_ms,
            slow_reply_rate=self.slow_reply_rate,
            slow_reply_ms=self.slow_reply_ms,
            refuse_key=self.refuse_key,
            down_until=self.down_until,
        )
