"""docs/metrics.md names exactly the metrics we export; the alert rules and the dashboard parse (their PromQL
too) and name only metrics of that table; the queue gauge keeps its contract (name, labels, states)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
from pathlib import Path

import fakeredis
import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import campaign.service.metrics as service_metrics
import worker.metrics  # noqa: F401  (registers the workers' metrics)
from worker.redis_metrics import QUEUE_MESSAGES, RedisGauges

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "ops" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "ops" / "grafana" / "dashboard.json"
_ROW = re.compile(r"^\| `(?P<name>[a-z_]+)` \| (?P<type>[^|]+) \|[^|]*\| (?P<source>[A-Za-z]+) \|", re.M)
_SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "counter": ("",), "gauge": ("",)}
RULE_KEYS = {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}


def documented() -> dict[str, tuple[str, str]]:
    """Each metric of docs/metrics.md's table: its type and where it comes from."""
    text = (ROOT / "docs" / "metrics.md").read_text()
    return {m["name"]: (m["type"].split()[0], m["source"]) for m in _ROW.finditer(text)}


def queryable() -> set[str]:
    """Every series name a query may use: the table's names, a histogram's with its suffixes."""
    return {name + suffix for name, (kind, _) in documented().items() for suffix in _SUFFIXES[kind]}


def exported() -> dict[str, str]:
    """Our metrics' names as exposed (a counter's with `_total`), by type, from the registries and the
    Redis collector."""
    families = [f for f in REGISTRY.collect() if f.name.startswith("campaign_")]
    families += list(service_metrics.REGISTRY.collect())
    families += list(RedisGauges(fakeredis.FakeRedis(), "HXDOC").collect())
    return {f.name + ("_total" if f.type == "counter" else ""): f.type for f in families}


def dramatiq_names() -> set[str]:
    """The metrics dramatiq's Prometheus middleware declares, as exposed (its counters' names end in
    `_total`); read from its source, since importing it makes a directory."""
    origin = importlib.util.find_spec("dramatiq.middleware.prometheus").origin
    return set(re.findall(r'prom\.\w+\(\s*"(dramatiq_[a-z_]+)"', Path(str(origin)).read_text()))


def names_in(expr: str) -> set[str]:
    found: set[str] = set()
    promql_parser.walk(
        promql_parser.parse(expr),
        lambda node: found.add(node.name) if isinstance(node, promql_parser.VectorSelector) else None,
    )
    return found


def test_the_table_names_every_metric_we_export_with_its_type():
    ours = {
        name: kind for name, (kind, source) in documented().items() if source in ("worker", "serve", "Redis")
    }
    assert ours == exported()


def test_the_table_names_dramatiqs_metrics_as_its_middleware_declares_them():
    from_dramatiq = {name for name, (_, source) in documented().items() if source == "dramatiq"}
    assert from_dramatiq == dramatiq_names()


def test_the_alert_rules_are_prometheus_rule_groups_naming_only_documented_metrics():
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    assert groups and len({group["name"] for group in groups}) == len(groups)
    names = queryable()
    for group in groups:
        assert set(group) <= {"name", "interval", "rules"} and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= RULE_KEYS and {"alert", "expr", "labels", "annotations"} <= set(rule)
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            assert names_in(rule["expr"]) <= names, rule["alert"]


def test_the_alerts_cover_what_operators_asked_for():
    alerts = {rule["alert"]: rule["expr"] for group in yaml.safe_load(ALERTS.read_text())["groups"]
              for rule in group["rules"]}  # fmt: skip
    for wanted in ("CampaignNoWorker", "CampaignE403Storm", "CampaignAccountHeld", "CampaignQueueGrowing",
                   "CampaignRedisMemoryHigh"):  # fmt: skip
        assert wanted in alerts
    assert "redis_memory_used_bytes" in names_in(alerts["CampaignRedisMemoryHigh"])


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian: prometheus) is not installed")
def test_promtool_accepts_the_alert_rules():
    checked = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_dashboards_queries_parse_and_name_only_documented_metrics():
    dashboard = json.loads(DASHBOARD.read_text())
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
    names, used = queryable(), set()
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus" and panel["targets"], panel["title"]
        for target in panel["targets"]:
            found = names_in(target["expr"])
            assert found <= names, (panel["title"], found - names)
            used |= found
    for wanted in ("campaign_messages_total", "campaign_gateway_request_seconds_bucket", QUEUE_MESSAGES,
                   "campaign_campaigns", "campaign_account_held", "campaign_delivery_messages"):  # fmt: skip
        assert wanted in used


def test_the_queue_gauge_keeps_its_contract():
    """KEDA scales on campaign_queue_messages{state=~"ready|delayed|in_flight"}: its name, labels, states."""
    (family,) = [f for f in RedisGauges(fakeredis.FakeRedis(), "HX").collect() if f.name == QUEUE_MESSAGES]
    assert family.type == "gauge"
    assert {frozenset(sample.labels) for sample in family.samples} == {frozenset({"queue", "state"})}
    assert {sample.labels["state"] for sample in family.samples} == {"ready", "delayed", "in_flight", "dead"}
    assert {"campaigns", "campaigns.txn", "campaigns.otp", "messages:txn"} <= {
        sample.labels["queue"] for sample in family.samples
    }
