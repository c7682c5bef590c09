"""A campaign whose permanent failures pass a share of the recipients attempted pauses itself, with the
reason, on fakeredis and a real Redis: not before the least attempted, not for recipients the suppression
list took off nor for transient errors, and, resumed by an operator, not again before as many more are
attempted."""

from __future__ import annotations

import asyncio

from structlog.testing import capture_logs

from campaign.cli import main
from producer.control import campaign_status, resume
from producer.publish import publish_campaign
from producer.spec import build_spec
from redis_model.ledger import ChunkLedger
from redis_model.outcomes import outcome_records
from redis_model.resend import ResendStore
from schemas.campaign import SUPPRESSED_CODE, ChunkOutcome, Outcome
from tests.integration.test_ledger import LEASE_MS, RETENTION_S, T0, submitted
from tests.integration.test_ledger import campaign as campaign  # the fixture: a published campaign of 300
from worker.broker import build_broker

SHARE, LEAST = 0.2, 100


def failed(size: int, code: str) -> ChunkOutcome:
    return ChunkOutcome(outcome=Outcome.FAILED, size=size, code=code)


def settle_in_turn(backend, cid: str, outcomes: list[ChunkOutcome], *, share: float = SHARE) -> list[str]:
    """Claim and settle each outcome's chunk in turn (job 0, from offset 0) as a worker does; the
    campaign's state after each."""

    async def go():
        client = backend.async_factory()
        ledger = ChunkLedger(
            client, lease_ms=LEASE_MS, retention_s=RETENTION_S, pause_on_failures=(share, LEAST)
        )
        states, offset = [], int(await client.hget(f"campaign:{{{cid}}}:progress", "0") or 0)
        try:
            for outcome in outcomes:
                await ledger.claim(cid, 0, "A", offset, outcome.size, "hold", now_ms=T0)
                assert await ledger.settle(cid, 0, "A", offset, outcome)
                offset += outcome.size
                states.append(campaign_status(backend.client, cid).state)
        finally:
            await client.aclose()
        return states

    return asyncio.run(go())


def test_failures_past_the_share_pause_the_campaign_with_the_reason(backend, campaign):
    cid = campaign()
    first = [submitted(40), failed(20, SUPPRESSED_CODE), failed(20, "E406"), submitted(20)]
    with capture_logs() as logs:
        states = settle_in_turn(backend, cid, [*first, failed(30, "E606")])

    # 60 attempted with 20 failed (a third) is under the least; 110 with 50 failed (45%) is not.
    assert states == ["queued"] * 4 + ["paused"]
    status = campaign_status(backend.client, cid)
    assert status.paused_reason == (
        "paused by itself: 50 of the 110 recipients attempted failed for good (45%, more than 20%), the last "
        "with E606; check the list and the template, then resume it"
    )
    assert [log["code"] for log in logs if log["event"] == "campaign.paused_itself"] == ["E606"]


def test_resumed_it_pauses_again_only_after_as_many_more_attempted(backend, campaign, make_settings):
    cid = campaign()
    settle_in_turn(backend, cid, [submitted(80), failed(30, "E606")])  # 110 attempted, 30 failed: paused
    assert campaign_status(backend.client, cid).state == "paused"

    resume(backend.client, cid, retention_s=RETENTION_S)
    assert campaign_status(backend.client, cid).paused_reason is None
    states = settle_in_turn(backend, cid, [failed(90, "E606"), failed(10, "E606")])

    assert states == ["queued", "paused"]  # 90 failed since is under the least; 100 is not
    assert campaign_status(backend.client, cid).paused_reason.startswith(
        "paused by itself: 100 of the 100 recipients attempted failed for good (100%"
    )


def test_none_of_it_when_off_or_under_the_share(backend, campaign):
    off, under = campaign(), campaign()
    assert settle_in_turn(backend, off, [failed(200, "E606")], share=0.0) == ["queued"]
    assert settle_in_turn(backend, under, [submitted(160), failed(40, "E606")]) == ["queued", "queued"]  # 20%
    # Transient errors that ran out of retries (E403, a 429) and a job out of retries for the worker's own
    # reasons were attempted, but a later try may go: not counted as failed.
    transient = campaign()
    storm = [failed(80, "E403"), failed(80, "HTTP429"), failed(80, "WORKER_RuntimeError"), failed(30, "E606")]
    assert settle_in_turn(backend, transient, storm) == ["queued"] * 4
    assert campaign_status(backend.client, off).paused_reason is None


def test_campaign_status_says_why_it_paused_itself(real_redis, monkeypatch, capsys, make_settings):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    settings = make_settings("http://127.0.0.1:9")
    spec = build_spec(settings=settings, sender="KLRHXA", type="MKT", body="Hi", prefix="+91")
    rows = [(i + 2, f"90000{i:05d}") for i in range(300)]
    publish_campaign(spec, rows, client=real_redis.client, broker=build_broker(settings, real_redis.client),
                     settings=settings)  # fmt: skip
    settle_in_turn(real_redis, spec.campaign_id, [failed(120, "E606")])

    assert main(["status", spec.campaign_id]) == 0
    shown = capsys.readouterr().out
    assert f"campaign {spec.campaign_id} (MKT): paused" in shown
    reason = "paused by itself: 120 of the 120 recipients attempted failed for good (100%, more than 20%)"
    assert reason in shown
    assert (
        f"with E606; check the list and the template, then resume it (`campaign resume {spec.campaign_id}`)"
        in shown
    )


def test_a_resent_campaign_is_judged_on_what_is_sent_again(backend, campaign):
    """`campaign resend --failed` takes its failures off `failed`: read against what is left, the old
    ones would pause the campaign at the next failure (38 of 162 is 23%), though 38 of 200 was 19%."""
    cid = campaign()
    assert settle_in_turn(backend, cid, [submitted(162), failed(38, "E606")]) == ["queued", "queued"]
    [failed_chunk] = [r for r in outcome_records(backend.client, cid) if r.outcome.outcome is Outcome.FAILED]
    store = ResendStore(backend.client, cid)
    assert store.reopen([failed_chunk], failed=38, unknown=0, failed_by_code={"E606": 38}, new_jobs=0)

    assert settle_in_turn(backend, cid, [failed(1, "E606"), submitted(50)]) == ["queued", "queued"]
