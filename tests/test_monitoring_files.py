"""The example Grafana dashboard and Prometheus alert rules in ops/ fit what `/metrics` exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml
from metrics_helpers import exposed_names

from app.metrics.state import UNACKNOWLEDGED_PAGING
from core.settings import PROJECT_ROOT
from ivr.metrics.counters import ANSWERS, CALL_OUTCOMES, LINES, MESSAGE_KINDS
from tickets.metrics import ACKNOWLEDGED_VIA, OPENED_HOW
from tickets.models import MESSAGE_CHANNELS, PRIORITIES

OPS = PROJECT_ROOT / "ops"
ALERTS = OPS / "prometheus-alerts.yml"
ALERT_TESTS = OPS / "prometheus-alerts.test.yml"
DASHBOARD = OPS / "grafana-dashboard.json"
# Grafana's variables, as Prometheus would see them filled in.
GRAFANA_VARIABLES = {"$job": ".+", "$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
# Labels our metrics carry, and the values the code gives them.
LABEL_VALUES = {
    "line": LINES,
    "outcome": CALL_OUTCOMES,
    "paging": UNACKNOWLEDGED_PAGING,
    "kind": MESSAGE_KINDS,
    "channel": MESSAGE_CHANNELS,
    "final": ("true", "false"),
    "answer": ANSWERS,
    "how": OPENED_HOW,
    "via": ACKNOWLEDGED_VIA,
    "priority": PRIORITIES,
}
# Prometheus' own labels and series, which no exposition of ours carries.
PROMETHEUS_LABELS = {"job", "instance", "le"}
PROMETHEUS_SERIES = {"up"}
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def all_queries() -> list[str]:
    return [rule["expr"] for rule in alert_rules()] + dashboard_queries()


def test_the_alert_rules_are_yaml_with_what_an_alert_needs():
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    alerting = " ".join(rule["expr"] for rule in rules)
    # The three the issue names: an engineer nobody reached, the journal, pages failing.
    for needed in ("ivr_urgent_tickets_unacknowledged", "ivr_journal_entries_waiting"):
        assert needed in alerting
    assert 'ivr_messages_failed_total{kind="page"' in alerting


def test_the_dashboard_is_json_whose_panels_all_query_something():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    panels = [panel for panel in dashboard["panels"] if panel["type"] != "row"]
    assert len(panels) >= 10
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_metric_they_use_is_exported(client, clock):
    exported = exposed_names(client.get("/metrics").get_data(as_text=True))
    for query in all_queries():
        used = set(re.findall(r"\bivr_[a-z0-9_]+", query))
        prometheus_own = {name for name in PROMETHEUS_SERIES if re.search(rf"\b{name}{{", query)}
        assert used or prometheus_own, query
        assert used <= exported, (used - exported, query)


def test_every_label_value_they_match_is_one_the_code_gives():
    for query in all_queries():
        for label, operator, wanted in MATCHER.findall(query):
            if label in PROMETHEUS_LABELS:
                continue
            known = LABEL_VALUES[label]
            values = wanted.split("|") if operator.endswith("~") else [wanted]
            assert set(values) <= set(known), (label, wanted, query)


@pytest.fixture
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    return path


def run(*command: str, cwd=OPS) -> None:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


# promtool runs as a process of its own: waiting for it fails under libfaketime (see .ci/run).
@pytest.mark.wall_clock
def test_promtool_accepts_the_rules_and_their_unit_tests_pass(promtool):
    run(promtool, "check", "rules", ALERTS.name)
    run(promtool, "test", "rules", ALERT_TESTS.name)


@pytest.mark.wall_clock
def test_promtool_accepts_every_dashboard_query(promtool, tmp_path):
    records = []
    for number, query in enumerate(dashboard_queries()):
        if query.startswith("label_values("):
            continue
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        records.append({"record": f"dashboard:query_{number}", "expr": query})
    rules = tmp_path / "dashboard-queries.yml"
    rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    run(promtool, "check", "rules", str(rules), cwd=tmp_path)
