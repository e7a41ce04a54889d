"""deploy/observability: the alert rules pass `promtool check rules`, each alert has a promtool unit test that
fails when the alert never fires, the dashboard and the rules query only metrics the services export (scraped
from every running service), and the monitoring component builds and scrapes what the Deployments expose.

promtool comes from the Debian package `prometheus` (deploy/system-packages.sh)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.observability import generate
from tests.kube import by_kind, find_kubectl, kustomize
from tests.support import exported_names

ROOT = Path(__file__).resolve().parents[2]
OBSERVABILITY = ROOT / "deploy" / "observability"
ALERTS = OBSERVABILITY / "alerts.yml"
ALERT_TESTS = OBSERVABILITY / "alerts.test.yml"
DASHBOARD = OBSERVABILITY / "dashboard.json"
COMPONENT = ROOT / "k8s" / "components" / "monitoring"
OVERLAY = ROOT / "k8s" / "overlays" / "production"
# What the issue asks alerts for: outbox age, consumer lag, 5xx ratio, readiness, SMS failures, egress limit.
REQUIRED_ALERTS = {
    "OutboxStuck", "ConsumerLagGrowing", "HighServerErrorRatio", "ServiceNotReady", "SmsFailures", "EgressOverLimit",
}  # fmt: skip
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself for every target
NEVER_FIRES = "vector(0) > 1"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool missing: run deploy/system-packages.sh (Debian package prometheus)")
    return found


def run(promtool: str, *args: str, cwd: Path = OBSERVABILITY) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def alert_rules(path: Path = ALERTS) -> list[dict[str, Any]]:
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# ---- PromQL: which metric names an expression reads ----------------------------------------------------------
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
             "group_right", "inf", "nan"}  # fmt: skip


def metric_names(expr: str) -> set[str]:
    """The metric names in a PromQL expression: identifiers that are not functions (followed by ``(``), label
    matchers (inside ``{}``), strings, durations (inside ``[]``), grouping labels or keywords."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings (regexes, label values)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", text):
        name, call = match.group(1), match.group(2)
        if not call and name.lower() not in _KEYWORDS:
            names.add(name)
    return names


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def unknown_metrics(exprs: list[str], exported: set[str]) -> dict[str, set[str]]:
    found = {expr: metric_names(expr) - exported - PROMETHEUS_OWN for expr in exprs}
    return {expr: names for expr, names in found.items() if names}


# ---- tests -----------------------------------------------------------------------------------------------
def test_generated_files_are_up_to_date() -> None:
    assert generate.main(["--check"]) == 0, "run `uv run python -m deploy.observability.generate` and commit"


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", ALERTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {rule["alert"] for rule in alert_rules()} >= REQUIRED_ALERTS


def test_promtool_check_catches_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    broken = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    broken["groups"][0]["rules"][0]["expr"] = "max by (service) (ems_outbox_pending_rows > "
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(broken), encoding="utf-8")
    assert run(promtool, "check", "rules", "alerts.yml", cwd=tmp_path).returncode != 0


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", ALERT_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_fails_when_it_never_fires(promtool: str, tmp_path: Path) -> None:
    cases = yaml.safe_load(ALERT_TESTS.read_text(encoding="utf-8"))["tests"]
    firing = {
        check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if check.get("exp_alerts")
    }
    quiet = {
        check["alertname"] for case in cases for check in case.get("alert_rule_test", []) if not check.get("exp_alerts")
    }
    names = [rule["alert"] for rule in alert_rules()]
    assert set(names) <= firing, f"alerts without a firing test: {set(names) - firing}"
    assert set(names) <= quiet, f"alerts without a test that they stay quiet: {set(names) - quiet}"
    shutil.copy(ALERT_TESTS, tmp_path / ALERT_TESTS.name)
    for name in names:  # each rule's test must notice the rule going dead
        mutated = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
        for group in mutated["groups"]:
            for rule in group["rules"]:
                if rule.get("alert") == name:
                    rule["expr"] = NEVER_FIRES
        (tmp_path / ALERTS.name).write_text(yaml.safe_dump(mutated), encoding="utf-8")
        assert run(promtool, "test", "rules", ALERT_TESTS.name, cwd=tmp_path).returncode != 0, name


def test_metric_name_reader() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (route, le) (rate(ems_http_request_duration_seconds_bucket{job="ems", '
        'route=~"/a|b"}[5m]))) / on (service) group_left max(ems_service_ready offset 5m) > bool 1 '
        "and deriv(ems_consumer_pending_messages[10m:1m]) > 0 or up == 0"
    )
    assert metric_names(expr) == {
        "ems_http_request_duration_seconds_bucket", "ems_service_ready", "ems_consumer_pending_messages", "up",
    }  # fmt: skip
    assert unknown_metrics(["rate(ems_no_such_total[5m])", "up"], {"ems_service_ready"}) == {
        "rate(ems_no_such_total[5m])": {"ems_no_such_total"}
    }


async def test_dashboard_and_alerts_query_only_exported_metrics(suite: Any) -> None:
    exported: set[str] = set()
    for service in suite.services:
        exported |= await exported_names(suite.url(service))
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = dashboard_queries(dashboard)
    assert queries and unknown_metrics(queries, exported) == {}
    assert unknown_metrics([rule["expr"] for rule in alert_rules()], exported) == {}
    # one row per service plus the event flow, each with panels
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert sorted(rows) == sorted(["Event flow", *suite.services])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_monitoring_component(tmp_path: Path) -> None:
    kubectl = find_kubectl()
    if kubectl is None:
        pytest.fail("no kubectl with kustomize >= v4: run deploy/install-tools.sh")
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "ems",  # as in the production overlay, where the component is listed
                "resources": [os.path.relpath(OVERLAY, tmp_path)],
                "components": [os.path.relpath(COMPONENT, tmp_path)],
            }
        ),
        encoding="utf-8",
    )
    docs = kustomize(kubectl, tmp_path)
    [monitor] = by_kind(docs, "PodMonitor").values()
    assert monitor["metadata"]["namespace"] == "ems"
    selector = monitor["spec"]["selector"]["matchLabels"]
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    deployments = by_kind(docs, "Deployment")
    assert deployments
    for name, deployment in deployments.items():  # every service is scraped on its container's port
        template = deployment["spec"]["template"]
        assert selector.items() <= template["metadata"]["labels"].items(), name
        ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["port"] in ports, name
    assert {"targetLabel": "job", "replacement": "ems", "action": "replace"} in endpoint["relabelings"]
    [rule] = by_kind(docs, "PrometheusRule").values()
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    dashboard = by_kind(docs, "ConfigMap")["ems-grafana-dashboard"]
    assert json.loads(dashboard["data"]["ems-suite.json"]) == json.loads(DASHBOARD.read_text(encoding="utf-8"))
