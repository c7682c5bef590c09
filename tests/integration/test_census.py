"""The metrics' campaign census: walked by one exporter for all, at most every CAMPAIGN_METRICS_CENSUS."""

from __future__ import annotations

import time

import pytest

from redis_model import census, keys
from redis_model.census import shared_campaigns
from worker.redis_metrics import RedisGauges


def add_campaign(client, campaign_id: str, state: str, delivered: int = 0) -> None:
    client.zadd(keys.CAMPAIGNS_BY_CREATION, {campaign_id: time.time()})
    client.hset(keys.campaign(campaign_id), mapping={keys.STATE: state, keys.DELIVERED: delivered})


class CountingClient:
    """The client, counting the campaigns' reads (HMGET of a campaign's hash) that walks make."""

    def __init__(self, client) -> None:
        self.client, self.walked = client, 0

    def __getattr__(self, name):
        return getattr(self.client, name)

    def pipeline(self, *args, **kwargs):
        pipe = self.client.pipeline(*args, **kwargs)
        outer = self

        class Counted:
            def __enter__(self):
                pipe.__enter__()
                return self

            def __exit__(self, *exc):
                return pipe.__exit__(*exc)

            def __getattr__(self, name):
                return getattr(pipe, name)

            def hmget(self, *args):
                outer.walked += 1
                return pipe.hmget(*args)

        return Counted()


def test_exporters_share_one_walk_until_it_is_stale(backend):
    add_campaign(backend.client, "a", "running", delivered=3)
    add_campaign(backend.client, "b", "completed", delivered=4)
    first, second = CountingClient(backend.client), CountingClient(backend.client)

    walked = shared_campaigns(first, fresh_s=30)
    assert walked is not None and walked.age_s == 0
    assert walked.census.by_state == {"running": 1, "completed": 1}
    assert walked.census.delivered["delivered"] == 7
    assert first.walked == 2

    # Another exporter within the freshness reads the stored census: no campaign read, the same figures.
    add_campaign(backend.client, "c", "paused")
    shown = shared_campaigns(second, fresh_s=30)
    assert shown is not None and second.walked == 0
    assert shown.census == walked.census
    assert 0 <= shown.age_s < 5

    # Once it is stale, the next exporter walks and finds the new campaign.
    time.sleep(0.02)
    again = shared_campaigns(second, fresh_s=0.01)
    assert again is not None and again.age_s == 0 and second.walked == 3
    assert again.census.by_state == {"running": 1, "completed": 1, "paused": 1}


def test_while_one_exporter_walks_the_others_show_the_last_census(backend):
    add_campaign(backend.client, "a", "running")
    assert shared_campaigns(backend.client, fresh_s=30) is not None
    backend.client.set(keys.CAMPAIGN_CENSUS_WALK, b"1", ex=60)  # another exporter is walking
    add_campaign(backend.client, "b", "completed")

    time.sleep(0.02)
    stale = shared_campaigns(backend.client, fresh_s=0.01)
    assert stale is not None and stale.census.by_state == {"running": 1}

    backend.client.delete(keys.CAMPAIGN_CENSUS)  # and none stored yet: nothing rather than a second walk
    assert shared_campaigns(backend.client, fresh_s=30) is None
    backend.client.delete(keys.CAMPAIGN_CENSUS_WALK)
    walked = shared_campaigns(backend.client, fresh_s=30)
    assert walked is not None and walked.census.by_state == {"running": 1, "completed": 1}
    assert not backend.client.exists(keys.CAMPAIGN_CENSUS_WALK)  # the walk's lease given back


def test_off_walks_at_every_call_and_stores_nothing(backend):
    add_campaign(backend.client, "a", "running")
    counting = CountingClient(backend.client)
    for _ in range(2):
        assert shared_campaigns(counting, fresh_s=0).census.by_state == {"running": 1}
    assert counting.walked == 2
    assert not backend.client.exists(keys.CAMPAIGN_CENSUS)


def test_an_unreadable_stored_census_is_walked_again(backend):
    add_campaign(backend.client, "a", "running")
    backend.client.set(keys.CAMPAIGN_CENSUS, b"\xc1 not msgpack", ex=600)
    walked = shared_campaigns(backend.client, fresh_s=30)
    assert walked is not None and walked.census.by_state == {"running": 1}


@pytest.mark.parametrize("census_s", [0, 30])
def test_the_scrape_shows_the_census_and_its_age(backend, census_s):
    add_campaign(backend.client, "a", "completed", delivered=2)
    families = {family.name: family for family in RedisGauges(backend.client, "HX", census_s).collect()}
    assert [
        sample.value
        for sample in families["campaign_campaigns"].samples
        if sample.labels["state"] == "completed"
    ] == [1]
    assert [sample.value for sample in families["campaign_census_age_seconds"].samples] == [0]


def test_a_walk_that_outlived_its_lease_leaves_the_next_exporters_lease(backend, monkeypatch):
    add_campaign(backend.client, "a", "running")
    walk = census.campaigns

    def slow_walk(client):
        client.set(keys.CAMPAIGN_CENSUS_WALK, b"the next exporter's", ex=60)  # ours expired meanwhile
        return walk(client)

    monkeypatch.setattr(census, "campaigns", slow_walk)
    assert shared_campaigns(backend.client, fresh_s=30) is not None
    assert backend.client.get(keys.CAMPAIGN_CENSUS_WALK) == b"the next exporter's"
