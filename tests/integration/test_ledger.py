"""Each transition of the chunk ledger, on fakeredis and on a real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from producer.control import campaign_status, cancel, pause
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model import delivery, keys
from redis_model.ledger import ChunkLedger, Claim
from redis_model.outcomes import chunk_outcomes
from schemas.campaign import ChunkOutcome, Outcome
from worker.broker import build_broker

LEASE_MS = 10_000
RETENTION_S = 3600
T0 = 1_800_000_000_000  # a fixed "now" in ms; leases are compared to it, not to the clock


@pytest.fixture
def campaign(backend, make_settings):
    """A published campaign of one job of 300 recipients (nothing sends it)."""
    settings = make_settings("http://127.0.0.1:9")

    def publish(on_unknown: str = "hold") -> str:
        spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91",
                          on_unknown=on_unknown)  # fmt: skip
        rows = [(i + 2, f"90000{i:05d}") for i in range(300)]
        publish_campaign(spec, rows, client=backend.client, broker=build_broker(settings, backend.client),
                         settings=settings)  # fmt: skip
        return spec.campaign_id

    return publish


def submitted(size: int, *, dropped: int = 0) -> ChunkOutcome:
    """A chunk the gateway accepted, but for its last `dropped` nodes (E406)."""
    ids = [f"msg-{i}" for i in range(size - dropped)] + [""] * dropped
    return ChunkOutcome(outcome=Outcome.SUBMITTED, size=size, code="E406" if dropped else "", message_ids=ids)


def run(backend, steps):
    """Run `steps(ledger)` on a fresh loop with a fresh async client."""

    async def go():
        client = backend.async_factory()
        try:
            return await steps(ChunkLedger(client, lease_ms=LEASE_MS, retention_s=RETENTION_S))
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_free_chunk_is_claimed_then_settled_with_its_counts(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        claimed = await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        applied = await ledger.settle(cid, 0, "A", 0, submitted(100, dropped=2))
        again = await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0)
        return claimed, applied, again

    claimed, applied, again = run(backend, steps)
    status = campaign_status(backend.client, cid)
    assert claimed == (Claim.CLAIMED, 0)
    assert applied is True
    assert again == (Claim.SETTLED, 100)  # a redelivered job skips what is settled
    assert (status.submitted, status.failed, status.pending, status.failures) == (98, 2, 200, {"E406": 2})
    assert dict(chunk_outcomes(backend.client, cid)) == {(0, 0): submitted(100, dropped=2)}


def test_a_live_claim_makes_another_worker_wait(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        return await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0 + LEASE_MS - 1)

    assert run(backend, steps) == (Claim.BUSY, 0)


def test_an_expired_claim_under_hold_is_settled_unknown_and_not_resent(backend, campaign):
    cid = campaign("hold")

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        taken = await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0 + LEASE_MS + 1)
        late = await ledger.settle(cid, 0, "A", 0, submitted(100))  # the vanished worker comes back
        return taken, late

    taken, late = run(backend, steps)
    status = campaign_status(backend.client, cid)
    assert taken == (Claim.HELD, 100)
    assert late is False
    assert (status.unknown, status.submitted, status.resent, status.pending) == (100, 0, 0, 200)
    held = ChunkOutcome(outcome=Outcome.UNKNOWN, size=100, code="WORKER_LOST")
    assert dict(chunk_outcomes(backend.client, cid)) == {(0, 0): held}


def test_an_expired_claim_under_resend_is_claimed_again_and_counted_resent(backend, campaign):
    cid = campaign("resend")

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 100, "resend", now_ms=T0)
        taken = await ledger.claim(cid, 0, "B", 0, 100, "resend", now_ms=T0 + LEASE_MS + 1)
        lost = await ledger.settle(cid, 0, "A", 0, submitted(100))
        won = await ledger.settle(cid, 0, "B", 0, submitted(100))
        return taken, lost, won

    taken, lost, won = run(backend, steps)
    status = campaign_status(backend.client, cid)
    assert taken == (Claim.CLAIMED, 0)
    assert (lost, won) == (False, True)
    assert (status.submitted, status.resent, status.unknown) == (100, 100, 0)


def test_a_released_claim_can_be_taken_at_once(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        released = await ledger.release(cid, 0, "A")
        return released, await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0)

    assert run(backend, steps) == (True, (Claim.CLAIMED, 0))


def test_only_the_owner_releases(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        return await ledger.release(cid, 0, "B"), await ledger.release(cid, 0, "A")

    assert run(backend, steps) == (False, True)


@pytest.mark.parametrize("steer", ["pause", "cancel"])
def test_a_claim_that_starts_a_chunk_reads_the_campaigns_state_and_claims_nothing_once_steered(
    backend, campaign, steer
):
    cid = campaign()
    (pause if steer == "pause" else cancel)(backend.client, cid, retention_s=RETENTION_S)

    async def steps(ledger):
        steered = await ledger.claim(cid, 0, "A", 0, 100, "hold", while_running=True, now_ms=T0)
        # Nothing was claimed: a claim that does not ask about the state (a cancel settling the
        # rest, say) is not kept waiting on a lease.
        unconditional = await ledger.claim(cid, 0, "B", 0, 300, "hold", now_ms=T0)
        return steered, unconditional

    verdict = Claim.PAUSED if steer == "pause" else Claim.CANCELLED
    assert run(backend, steps) == ((verdict, 0), (Claim.CLAIMED, 0))


def test_a_campaign_no_longer_in_redis_is_never_claimed(backend, campaign):
    cid = campaign()
    backend.client.delete(*keys.all_keys(cid))

    async def steps(ledger):
        return await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)

    assert run(backend, steps) == (Claim.SETTLED, 0)  # the job ends as orphaned
    assert not backend.client.exists(keys.claims(cid))


def test_a_running_campaign_is_claimed_from_while_running(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        return await ledger.claim(cid, 0, "A", 0, 100, "hold", while_running=True, now_ms=T0)

    assert run(backend, steps) == (Claim.CLAIMED, 0)


def test_the_last_settlement_completes_the_campaign(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        for offset in (0, 100, 200):
            await ledger.claim(cid, 0, "A", offset, 100, "hold", now_ms=T0)
            await ledger.settle(cid, 0, "A", offset, submitted(100))

    run(backend, steps)
    status = campaign_status(backend.client, cid)
    assert (status.state, status.submitted, status.pending) == ("completed", 300, 0)
    assert status.finished_at is not None


def test_claims_follow_the_progress_exactly(backend, campaign):
    """A worker whose idea of the progress is stale (ahead or behind) is told the real one, nothing more."""
    cid = campaign()

    async def steps(ledger):
        ahead = await ledger.claim(cid, 0, "A", 100, 100, "hold", now_ms=T0)
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        await ledger.settle(cid, 0, "A", 0, submitted(100))
        behind = await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0)
        return ahead, behind

    assert run(backend, steps) == ((Claim.SETTLED, 0), (Claim.SETTLED, 100))


def test_settling_needs_our_claim_and_the_progress_it_was_claimed_at(backend, campaign):
    cid = campaign()

    async def steps(ledger):
        failed = ChunkOutcome(outcome=Outcome.FAILED, size=100, code="E403")
        unclaimed = await ledger.settle(cid, 0, "A", 0, failed)
        await ledger.claim(cid, 0, "A", 0, 100, "hold", now_ms=T0)
        wrong_start = await ledger.settle(cid, 0, "A", 100, failed)
        return unclaimed, wrong_start

    assert run(backend, steps) == (False, False)
    status = campaign_status(backend.client, cid)
    assert (status.failed, status.pending) == (0, 300)
    assert dict(chunk_outcomes(backend.client, cid)) == {}


def test_a_stale_claim_whose_progress_was_lost_is_held_up_to_its_end(backend, campaign):
    """Redis lost the settlement of [0, 100) (AOF's last second), then the claim on [100, 200) went stale."""
    cid = campaign("hold")
    backend.client.hset(keys.claims(cid), "0", f"A|{T0}|100|100")

    async def steps(ledger):
        return await ledger.claim(cid, 0, "B", 0, 100, "hold", now_ms=T0 + 1)

    assert run(backend, steps) == (Claim.HELD, 200)
    status = campaign_status(backend.client, cid)
    assert (status.unknown, status.pending) == (200, 100)


@pytest.mark.parametrize("lease_from_now", [60.0, -1.0])
def test_a_campaign_still_being_published_completes_only_when_its_producer_or_a_cancel_ends_it(
    backend, campaign, lease_from_now
):
    """A live publishing lease: more jobs are coming. A lapsed one: the producer died mid-file;
    status shows it lost, and `campaign cancel` ends the campaign."""
    cid = campaign()
    backend.client.hset(keys.campaign(cid), keys.PUBLISHING, time.time() + lease_from_now)

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 300, "hold", now_ms=T0)
        return await ledger.settle(cid, 0, "A", 0, submitted(300))

    assert run(backend, steps) is True
    status = campaign_status(backend.client, cid)
    assert (status.state, status.pending, status.finished_at) == ("queued", 0, None)
    assert (status.publishing, status.publisher_lost) == (lease_from_now > 0, lease_from_now < 0)

    cancel(backend.client, cid, retention_s=RETENTION_S)
    status = campaign_status(backend.client, cid)
    assert (status.state, status.publishing, status.publisher_lost) == ("cancelled", False, False)
    assert status.finished_at is not None


def test_a_chunk_whose_reply_was_not_matched_keeps_its_furthest_node_for_reconciliation(backend, campaign):
    """Ids in reply order (not attributed): the delivery header names the furthest node, not the last id's."""
    cid = campaign()
    ids = [f"req-u:{position}" for position in (3, 9, 0, 5)]
    outcome = ChunkOutcome.submitted(4, ids, attributed=False)

    async def steps(ledger):
        await ledger.claim(cid, 0, "A", 0, 4, "hold", now_ms=T0)
        return await ledger.settle(cid, 0, "A", 0, outcome)

    assert run(backend, steps) is True
    header = delivery.decode_header(backend.client.get(keys.delivery("req-u")))
    assert (header.nodes, header.last_position) == (4, 9)
