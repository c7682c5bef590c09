"""Delivery reports end to end, on fakeredis and a real Redis: a campaign sent through the simulator,
whose reports (of every kind, some twice, some out of order, some before the worker settled their
request, some never) reach `campaign serve`'s receiver; the campaign's counts are what the simulator
says it reported."""

from __future__ import annotations

import json
import urllib.request
from collections import Counter

from campaign.service.config import ServiceConfig
from campaign.service.dlr_config import DlrConfig
from ops.simulator import SimulatorConfig, start_in_thread
from ops.simulator.delivery import ReportsConfig
from producer.control import campaign_status
from producer.publish import publish_campaign
from producer.spec import build_spec
from tests.conftest import API_KEY
from tests.integration.http_served import serving
from tests.integration.test_campaign_flow import wait_completed, wait_for

TOKEN = "dlr-secret-for-tests"
FINAL = {"Delivered": "delivered", "Undelivered": "undelivered", "Failed": "dlr_failed"}


def reports_record(simulator) -> dict:
    with urllib.request.urlopen(simulator.base_url + "/_simulator/reports", timeout=10) as answer:
        return json.loads(answer.read())


def test_a_campaigns_counts_are_what_the_simulator_reported(backend, start_worker, make_settings):
    with start_in_thread(SimulatorConfig(api_key=API_KEY, seed=5)) as simulator:
        settings = make_settings(simulator.base_url)
        with serving(backend, settings, ServiceConfig(dlr=DlrConfig(token=TOKEN))) as served:
            simulator.set_reports(ReportsConfig(
                url=served.url + "/v1/dlr/kaleyra", token=TOKEN, median_delay_ms=20, delay_sigma=1.5,
                sent_rate=0.3, out_of_order_rate=0.5, duplicate_rate=0.2, drop_rate=0.1, retry_ms=50,
                seed=7,
            ))  # fmt: skip
            broker = start_worker(settings)
            spec = build_spec(settings=settings, sender="KLRHXA", type="TXN", body="Shipped", prefix="+91")
            rows = [(i + 2, f"90000{i:05d}") for i in range(2000)]
            publish_campaign(spec, rows, client=backend.client, broker=broker, settings=settings)
            wait_completed(backend, spec.campaign_id)

            def all_answered():
                summary = reports_record(simulator)["summary"]
                return summary["messages"] == 2000 and summary["pending"] == 0 and summary

            summary = wait_for(all_answered)
            messages = reports_record(simulator)["messages"]
            reported = Counter(FINAL[m["status"]] for m in messages if not m["dropped"])
            expected = (reported["delivered"], reported["undelivered"], reported["dlr_failed"])
            # Reports that came before their request was settled are recorded within a second or so.
            status = wait_for(
                lambda: (
                    (s := campaign_status(backend.client, spec.campaign_id))
                    and (s.delivered, s.undelivered, s.dlr_failed) == expected
                    and s
                ),
                timeout=30,
            )

    assert summary["gave_up"] == 0 and summary["duplicated"] > 0 and summary["out_of_order"] > 0
    assert status.submitted == 2000
    assert status.delivery_pending == summary["dropped"] > 0
    traces = Counter(m["status_trace"] for m in messages if not m["dropped"])
    assert status.traces == {trace: n for trace, n in traces.items()}
    assert status.delivery_p50_s is not None and status.delivery_p50_s <= status.delivery_p90_s
