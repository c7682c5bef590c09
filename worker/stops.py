"""Why a job's run stops before its end and comes back later, without spending one of its retries."""

from __future__ import annotations

# A held job (a scheduled campaign, quiet hours) looks again at least this often: a cancel settles it then.
HELD_RECHECK_MS = 60_000


class ComeBackLater(Exception):
    """Paused, shutting down, or another worker holds the job's chunk: requeue without spending a retry."""

    delay_ms: int | None = 2000  # before the job is looked at again


class Held(ComeBackLater):
    """A scheduled campaign before its release, or a chunk waiting for its time: look again then."""

    def __init__(self, reason: str, seconds: float) -> None:
        super().__init__(reason)
        self.delay_ms = max(1, min(int(seconds * 1000), HELD_RECHECK_MS))


class DailyCapReached(Held):
    """The account sent its daily cap (`campaign limit --daily`): nothing more goes until the next UTC
    day; a job looks again every HELD_RECHECK_MS (a cap raised meanwhile lets it go on)."""

    def __init__(self, seconds: float) -> None:
        reason = f"the account's daily cap is reached: sending resumes in {seconds / 3600:.1f} h"
        super().__init__(reason, seconds)
        self.resumes_in_s = seconds


class MakeWay(ComeBackLater):
    """A bulk job hands its thread over (to an OTP, say) and goes to the back of its queue: an urgent
    job waits for a thread, or the bulk job has waited on the rate limit a while."""

    delay_ms = None


class UnsettledChunk(ComeBackLater):
    """A chunk went out but Redis would not record its outcome: never failed, its claim goes stale."""
