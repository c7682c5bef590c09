"""The simulator's settings, fixed at start (faults can be changed later over HTTP)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ops.simulator.delivery import ReportsConfig
from ops.simulator.faults import check_ms, check_rate
from schemas.errors import InputError


@dataclass(frozen=True, slots=True)
class SimulatorConfig:
    """`sid` None accepts any SID in the path; `seed` makes fault injection reproducible."""

    api_key: str = field(repr=False)  # never in a repr, a log line or a traceback
    sid: str | None = None
    e403_rate: float = 0.0
    latency_ms: float = 0.0
    seed: int | None = None
    slow_reply_rate: float = 0.0  # share of accepted requests whose answer is held back
    slow_reply_ms: float = 0.0  # how long it is held, after the messages are recorded
    # Delivery reports and the status query's outcomes; None: none decided, none sent.
    reports: ReportsConfig | None = None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise InputError("the simulator needs an api key: clients must send it in the api-key header")
        check_rate("e403_rate", self.e403_rate)
        check_ms("latency_ms", self.latency_ms)
        check_rate("slow_reply_rate", self.slow_reply_rate)
        check_ms("slow_reply_ms", self.slow_reply_ms)
