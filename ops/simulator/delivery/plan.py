"""Draws, for each accepted message, its final status, when it takes effect and how it is reported."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time
from statistics import NormalDist

import msgspec

from ops.simulator.delivery.config import ReportsConfig
from ops.simulator.delivery.record import MessageReports, Report
from ops.simulator.delivery.statuses import SENT, SENT_TRACE, TRACE_STATUS
from ops.simulator.record import AcceptedMessage

_NORMAL = NormalDist()
_TINY = 1e-12  # inv_cdf refuses 0


def timestamp(unix: float) -> str:
    """Kaleyra's form in its callback example, `2025-04-17 18:35:20`; in UTC here."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix))


class Planner:
    """Every message takes the same eight draws whatever the rates, so that a seeded run gives the
    same outcomes to the same messages when one share changes."""

    __slots__ = ("_config", "_cumulative", "_rng", "_traces")

    def __init__(self, config: ReportsConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        weights = [(trace, weight) for trace, weight in config.outcomes.items() if weight > 0.0]
        self._traces = [trace for trace, _ in weights]
        self._cumulative = list(itertools.accumulate(weight for _, weight in weights))

    def plan(self, message: AcceptedMessage, accepted_at: float) -> tuple[MessageReports, list[float]]:
        """The message's record, and each of its reports' delay after `accepted_at`, in seconds."""
        config, draw = self._config, self._rng.random
        u_delay, u_outcome, u_sent, u_sent_at, u_order, u_duplicate, u_gap, u_drop = (
            draw(), draw(), draw(), draw(), draw(), draw(), draw(), draw(),
        )  # fmt: skip
        median_s = config.median_delay_ms / 1000
        final_s = median_s * math.exp(config.delay_sigma * _NORMAL.inv_cdf(max(u_delay, _TINY)))
        index = bisect.bisect_right(self._cumulative, u_outcome * self._cumulative[-1])
        trace = self._traces[min(index, len(self._traces) - 1)]
        status = TRACE_STATUS[trace]
        sent_report = u_sent < config.sent_rate
        dropped = u_drop < config.drop_rate
        out_of_order = sent_report and not dropped and u_order < config.out_of_order_rate
        duplicated = not dropped and u_duplicate < config.duplicate_rate
        final_at = accepted_at + final_s
        record = MessageReports(
            message_id=message.message_id,
            recipient=message.to.removeprefix("+"),
            sender=message.sender,
            status=status,
            status_trace=trace,
            final_at=final_at,
            sent_report=sent_report,
            out_of_order=out_of_order,
            duplicated=duplicated,
            dropped=dropped,
        )
        if config.url is None:  # decided for the status query; nothing to send
            return record, []
        sent_s = final_s * u_sent_at / 2  # the Sent status comes first, whenever its report goes
        sent_at = timestamp(accepted_at + sent_s)
        sent = Report(kind="sent", status=SENT, status_trace=SENT_TRACE, timestamp=sent_at)
        final = Report(kind="final", status=status, status_trace=trace, timestamp=timestamp(final_at))
        steps: list[tuple[float, Report]] = []
        if sent_report and not out_of_order:
            steps.append((sent_s, sent))
        if not dropped:
            steps.append((final_s, final))
        if out_of_order:  # the Sent report waits for the final one and goes right after it
            steps.append((final_s, sent))
        if duplicated:
            steps.append((final_s + median_s * u_gap, msgspec.structs.replace(final, kind="duplicate")))
        record.reports = [report for _, report in steps]
        return record, [delay for delay, _ in steps]
