"""The account's rate limit: reservations on Redis's clock, set and cleared by `campaign limit`."""

from __future__ import annotations

import asyncio

import pytest

from campaign.cli import main
from producer.control import account_rate_limit, set_account_rate_limit
from redis_model import keys
from redis_model.account_rate import AccountRate
from schemas.campaign import Recipient
from schemas.errors import InputError
from worker.rate_limit import MAX_AHEAD_S, MAX_CHUNK_SHARE, AccountRateLimit

SID = "HXLIMIT"


def reserve(backend, *sizes: int, urgent: bool = False) -> list[tuple[float, int]]:
    """Ask to book `sizes` one after the other: [(seconds to wait, messages booked)] as the script answers."""
    return book(backend, *((n, urgent) for n in sizes))


def book(backend, *requests: tuple[int, bool]) -> list[tuple[float, int]]:
    """`reserve` for (size, urgent) requests, in one client and loop: little time passes between them."""

    async def go():
        client = backend.async_factory()
        line = AccountRate(client, SID)
        try:
            answers = [
                await line.reserve(n, urgent=urgent, max_ahead_s=MAX_AHEAD_S, max_share=MAX_CHUNK_SHARE)
                for n, urgent in requests
            ]
            return [(answer.wait_s, answer.granted) for answer in answers]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_without_a_limit_everything_goes_at_once(backend):
    assert reserve(backend, 1000, 1000) == [(0.0, 1000), (0.0, 1000)]


def test_the_limiter_says_whether_its_last_turn_was_paced(backend):
    """A worker asks a chunk's turn ahead only when none was: a paced turn is a slot in time."""

    async def turns():
        client = backend.async_factory()
        limiter = AccountRateLimit(client, SID)
        try:
            seen = [(await limiter.wait_turn(1000), limiter.limited)]
            set_account_rate_limit(backend.client, SID, "100000")
            seen.append((await limiter.wait_turn(1000), limiter.limited))
            return seen
        finally:
            await client.aclose()

    assert asyncio.run(turns()) == [(1000, False), (1000, True)]


def test_requests_book_a_small_share_of_a_second_each_and_bulk_books_only_a_moment_ahead(backend):
    set_account_rate_limit(backend.client, SID, "10000")  # 5% of a second: 500 messages a request
    answers = reserve(backend, 1000, 500, 500, 500)

    assert [booked for _, booked in answers] == [500, 500, 500, 0]
    waits = [wait for wait, _ in answers]
    assert waits[0] == 0
    # 500 messages at 10,000/s take 50 ms of the line; the calls themselves take a little of it too.
    for got, due in zip(waits[1:3], (0.05, 0.10), strict=True):
        assert due - 0.03 < got <= due
    assert 0.02 < waits[3] <= 0.05  # booked 150 ms ahead would be too far: come back in ~50 ms


def test_an_urgent_request_goes_ahead_of_the_bulk_backlog_and_pushes_it_back(backend):
    set_account_rate_limit(backend.client, SID, "1000")  # 50 messages a request

    # Bulk books the next 100 ms; an urgent request goes first and pushes bulk 150 ms out.
    *_, (urgent_wait, urgent_booked), (bulk_wait, bulk_booked) = book(
        backend, (50, False), (50, False), (50, True), (50, False)
    )
    assert (urgent_wait, urgent_booked) == (0, 50)
    assert bulk_booked == 0 and 0 < bulk_wait <= 0.051  # 150 ms booked: 50 ms past the bulk horizon


def test_a_new_limit_clears_urgent_bookings_made_at_the_old_pace(backend):
    set_account_rate_limit(backend.client, SID, "10")
    reserve(backend, *[1] * 20, urgent=True)  # two seconds of urgent bookings at 10/s
    set_account_rate_limit(backend.client, SID, "100000")

    [(wait, booked)] = reserve(backend, 1, urgent=True)
    assert (wait, booked) == (0.0, 1)


def turns_looking_up(backend, *sizes: int) -> list[tuple[int, list[int]]]:
    """Book chunks of `sizes` numbers (+919000000000 on) with the look-up: [(booked, listed positions)]."""
    chunk = [Recipient(f"+91900000{i:04d}", i) for i in range(max(sizes))]

    async def go():
        client = backend.async_factory()
        limiter = AccountRateLimit(client, SID)
        try:
            return [await limiter.wait_turn_looking_up(chunk[:size]) for size in sizes]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_a_turn_finds_the_opted_out_numbers_among_those_it_booked_in_the_same_round_trip(backend):
    assert turns_looking_up(backend, 1000) == [(1000, [])]  # an empty list: nobody opted out

    backend.client.sadd(keys.suppression_list(SID), "+919000000000", "+919000000007", "+919000000900")
    assert turns_looking_up(backend, 1000) == [(1000, [0, 7, 900])]

    set_account_rate_limit(backend.client, SID, "10000")  # 500 messages a request: the rest is not looked at
    assert turns_looking_up(backend, 1000) == [(500, [0, 7])]


def test_limit_off_removes_it_and_bad_values_are_refused(backend):
    set_account_rate_limit(backend.client, SID, "2500")
    assert account_rate_limit(backend.client, SID) == 2500
    for bad in ("fast", "0", "-5", "nan", "inf"):
        with pytest.raises(InputError, match="limit"):
            set_account_rate_limit(backend.client, SID, bad)
    assert account_rate_limit(backend.client, SID) == 2500
    assert set_account_rate_limit(backend.client, SID, "off") is None
    assert account_rate_limit(backend.client, SID) is None


def test_campaign_limit_sets_shows_and_refuses_in_one_line(real_redis, monkeypatch, capsys):
    monkeypatch.setenv("REDIS_URL", real_redis.url)
    monkeypatch.setenv("KALEYRA_SID", SID)
    assert main(["limit", "5000"]) == 0
    assert main(["limit"]) == 0
    assert main(["limit", "lots"]) == 2
    assert main(["limit", "off"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"account {SID}: 5000 messages per second"] * 2 + [
        f"account {SID}: no rate limit"
    ]
    assert err == "campaign: refused: limit 'lots' is not a number of messages per second (or off)\n"


def cut(backend, *, burst: bool = True, recent: bool = True) -> float:
    """A pushback; with `burst`, after a second in which 9 of 10 requests were pushed back; with
    `recent`, with requests in the last second (else the window's figures are stale)."""
    if burst:
        backend.client.hset(keys.account_rate(SID), mapping={"prev_requests": 10, "prev_pushbacks": 9})
    if recent:
        seconds, micros = backend.client.time()
        backend.client.hset(keys.account_rate(SID), "seen_from", seconds + micros / 1e6)

    async def go():
        client = backend.async_factory()
        try:
            return await AccountRateLimit(client, SID).back_off()
        finally:
            await client.aclose()

    return asyncio.run(go())


def field(backend, name: str) -> float | None:
    raw = backend.client.hget(keys.account_rate(SID), name)
    return float(raw) if raw is not None else None


def test_a_pushback_halves_the_pace_once_per_burst(backend):
    set_account_rate_limit(backend.client, SID, "1000")

    assert cut(backend) == 500
    assert cut(backend) == 0  # the same burst, within the cooldown: no second cut
    reserve(backend, 10)
    assert 500 <= field(backend, "pace") < 510  # requests now go at the cut pace
    assert (field(backend, "ceiling"), field(backend, "step")) == (1000, 500 / 10)


def test_the_pace_grows_back_linearly_and_the_cut_ends_where_it_started(backend):
    set_account_rate_limit(backend.client, SID, "1000")
    cut(backend)
    now = backend.client.time()
    backend.client.hset(keys.account_rate(SID), "pace_at", now[0] + now[1] / 1e6 - 4)  # 4 s ago

    reserve(backend, 10)
    assert 700 <= field(backend, "pace") < 710  # 500 + 50/s x 4 s
    backend.client.hset(keys.account_rate(SID), "pace_at", now[0] - 60)
    reserve(backend, 10)
    assert field(backend, "pace") is None  # back at the limit: the cut is over


def test_the_usual_few_e403s_are_not_a_burst_and_cut_nothing(backend):
    set_account_rate_limit(backend.client, SID, "1000")
    backend.client.hset(keys.account_rate(SID), mapping={"prev_requests": 100, "prev_pushbacks": 10})

    assert cut(backend, burst=False) == 0  # 11 of 100 requests: retried, not a signal
    backend.client.hset(keys.account_rate(SID), "prev_pushbacks", 30)
    assert cut(backend, burst=False) == 500  # 32 of 100: a burst


def test_figures_from_a_window_long_past_cut_nothing(backend):
    set_account_rate_limit(backend.client, SID, "1000")
    assert cut(backend, recent=False) == 0


def test_a_handful_of_requests_is_too_few_to_call_a_burst(backend):
    set_account_rate_limit(backend.client, SID, "1000")
    backend.client.hset(keys.account_rate(SID), mapping={"prev_requests": 3, "prev_pushbacks": 2})

    assert cut(backend, burst=False) == 0


def test_without_a_limit_a_burst_cuts_from_the_rate_seen_and_nothing_known_is_nothing_cut(backend):
    assert cut(backend) == 0  # no limit and nothing sent yet: no rate to cut from
    backend.client.hset(keys.account_rate(SID), "seen_rate", 8000)

    assert cut(backend) == 4000
    reserve(backend, 10)
    assert 4000 <= field(backend, "pace") < 4100 and field(backend, "ceiling") == 8000
