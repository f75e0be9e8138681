"""The chart's PrometheusRule (alerts.enabled): off by default; when on, exactly the rules
of prometheus/alerts.yaml (less alerts.disabled, plus alerts.ruleLabels), valid against the
Prometheus Operator's CRD schema (vendored in prometheusrule-crd-schema.yaml) and, as a
rules file, against promtool."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, VALUE_SETS, one, render
from tests.support.alerts import ALERTS_PATH, alert_rules, load_rules, promtool

jsonschema = pytest.importorskip("jsonschema")

CRD_SCHEMA = Path(__file__).with_name("prometheusrule-crd-schema.yaml")


def strict_schema(schema: Any) -> Any:
    """Kubernetes prunes (and strict validation rejects) fields a structural schema lacks."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        if "properties" in out and "additionalProperties" not in out:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


def validator() -> Any:
    return jsonschema.Draft7Validator(strict_schema(yaml.safe_load(CRD_SCHEMA.read_text())))


def rule(values: dict[str, Any]) -> dict[str, Any]:
    return one(render(values), "PrometheusRule")


def test_not_rendered_unless_enabled() -> None:
    for name, values in VALUE_SETS.items():
        if not values.get("alerts", {}).get("enabled"):
            assert "PrometheusRule" not in {d["kind"] for d in render(values)}, name


def test_the_link_reaches_the_rules_file() -> None:
    link = CHART / "alerts" / "alerts.yaml"
    assert link.is_symlink() and link.resolve() == ALERTS_PATH.resolve()


def test_enabled_it_carries_the_rules_file_unchanged() -> None:
    prometheus_rule = rule({"alerts": {"enabled": True}})
    assert prometheus_rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert prometheus_rule["metadata"]["namespace"] == "signaling"
    assert prometheus_rule["metadata"]["labels"]["app.kubernetes.io/name"] == "signaling"
    assert prometheus_rule["spec"] == load_rules()


def test_disabled_alerts_are_left_out_and_rule_labels_added() -> None:
    values = VALUE_SETS["alerts"]["alerts"]
    prometheus_rule = rule(VALUE_SETS["alerts"])
    assert prometheus_rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    expected = load_rules()
    for group in expected["groups"]:
        group["rules"] = [r for r in group["rules"] if r["alert"] not in values["disabled"]]
        for r in group["rules"]:
            # An alert's own labels win: severity stays what the rule says.
            r["labels"] = {**values["ruleLabels"], **r["labels"]}
    assert prometheus_rule["spec"] == expected
    names = {r["alert"] for g in prometheus_rule["spec"]["groups"] for r in g["rules"]}
    assert "SignalingLoopSaturated" not in names and len(names) == len(alert_rules()) - 1
    severities = {
        r["labels"]["severity"] for g in prometheus_rule["spec"]["groups"] for r in g["rules"]
    }
    assert severities == {"critical", "warning"}


def test_the_schema_lists_every_alert_name() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    enum = schema["properties"]["alerts"]["properties"]["disabled"]["items"]["enum"]
    assert sorted(enum) == sorted(r["alert"] for r in alert_rules())


@pytest.mark.parametrize("name", ["alerts-defaults", "alerts"])
def test_matches_the_crd_schema(name: str) -> None:
    values = VALUE_SETS.get(name, {"alerts": {"enabled": True}})
    errors = [f"{list(e.path)}: {e.message}" for e in validator().iter_errors(rule(values))]
    assert errors == []


def test_the_crd_schema_rejects_a_broken_rule() -> None:
    v = validator()
    good = rule({"alerts": {"enabled": True}})
    for field, value in (("for", "five minutes"), ("labels", {"severity": 1}), ("exprs", "up")):
        bad = copy.deepcopy(good)
        bad["spec"]["groups"][0]["rules"][0][field] = value
        assert list(v.iter_errors(bad)), field
    nameless = copy.deepcopy(good)
    del nameless["spec"]["groups"][0]["name"]
    assert list(v.iter_errors(nameless))


def test_rendered_rules_pass_promtool(tmp_path: Path) -> None:
    binary = promtool()
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(rule(VALUE_SETS["alerts"])["spec"]))
    result = subprocess.run(
        [binary, "check", "rules", str(path)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules()) - 1} rules found" in result.stdout
