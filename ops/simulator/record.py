"""What the simulator received and accepted, kept in memory for tests and load-test reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import msgspec


# gc=False: a load test keeps millions of these; they hold only strings and ints (no cycles),
# so the cyclic GC need not track them (msgspec performance tips).
class AcceptedMessage(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One accepted `sms` node: `to` as the client sent it, body and sender after top-level fallback."""

    message_id: str
    to: str
    body: str
    sender: str
    unicode: str
    request_index: int  # the request's 0-based number, also its error `reference`
    time: str | None = None  # Kaleyra's `time` when the request scheduled it
    flash: bool = False  # sent through `/sms` with flash=1


class RecordStats(msgspec.Struct, frozen=True, kw_only=True):
    requests: int
    accepted_requests: int
    accepted_messages: int
    rejected: dict[str, int]
    e403_injected: int
    max_nodes: int
    distinct_numbers: int
    duplicate_numbers: int  # numbers accepted more than once
    slow_replies: int
    replies_held: int
    most_in_flight: int  # the most requests held at once since the last clear: what clients kept going


@dataclass(slots=True)
class SimulatorRecord:
    """Counters and accepted messages since start or the last `clear()`.

    Written only from the server's event loop. Another thread may read it between
    requests; while requests are in flight, prefer `GET /_simulator/stats`.
    """

    requests: int = 0  # every POST to the send endpoint, refused or not
    accepted_requests: int = 0
    rejected: dict[str, int] = field(default_factory=dict)  # error code -> requests; E403 not included
    e403_injected: int = 0
    max_nodes: int = 0  # largest `sms` array seen in a decodable request, even a refused one
    messages: list[AcceptedMessage] = field(default_factory=list)
    # (monotonic time, messages) of each accepted request: the rate the gateway saw.
    arrivals: list[tuple[float, int]] = field(default_factory=list)
    slow_replies: int = 0  # accepted requests whose answer was held back
    # Answers being held right now: live requests, not history, so `clear()` leaves it alone
    # (each held request takes back its own 1 when it ends).
    replies_held: int = 0
    in_flight: int = 0  # requests being handled right now (live too)
    most_in_flight: int = 0
    clears: int = 0  # how many times clear() ran: lets a reader's index of `messages` know it is stale

    def arrive(self) -> int:
        """Count a request on arrival (one waiting for its processing is seen); returns its index."""
        index = self.requests
        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return index

    def reject(self, code: str) -> None:
        self.rejected[code] = self.rejected.get(code, 0) + 1

    def counts_by_number(self) -> Counter[str]:
        return Counter(message.to for message in self.messages)

    def stats(self) -> RecordStats:
        counts = self.counts_by_number()
        return RecordStats(
            requests=self.requests,
            accepted_requests=self.accepted_requests,
            accepted_messages=len(self.messages),
            rejected=dict(self.rejected),
            e403_injected=self.e403_injected,
            max_nodes=self.max_nodes,
            distinct_numbers=len(counts),
            duplicate_numbers=sum(1 for count in counts.values() if count > 1),
            slow_replies=self.slow_replies,
            replies_held=self.replies_held,
            most_in_flight=self.most_in_flight,
        )

    def clear(self) -> None:
        """In place, so that references held by tests stay valid. Leaves `replies_held` and
        `in_flight`: those requests are still in flight."""
        self.requests = self.accepted_requests = self.e403_injected = self.max_nodes = 0
        self.slow_replies = 0
        self.clears += 1
        self.most_in_flight = self.in_flight
        self.rejected.clear()
        self.messages.clear()
        self.arrivals.clear()
