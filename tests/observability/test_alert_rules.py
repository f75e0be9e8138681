"""The alert rules (prometheus/alerts.yaml) checked and unit-tested by Prometheus' own
promtool: every rule parses, every alert fires for the condition it reports and stays
quiet for healthy and near-miss series (prometheus/alerts.test.yaml), and the unit
tests notice when a rule is broken (mutations below)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.observability.dashboard import allowed_metric, selectors
from tests.support.alerts import (
    ALERTS_PATH,
    ALERTS_README,
    ALERTS_TEST_PATH,
    alert_rules,
    load_rules,
)
from tests.support.alerts import promtool as find_promtool

SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="module")
def promtool() -> str:
    return find_promtool()


def _run(promtool: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_check_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", ALERTS_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_check_rules_rejects_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The check above can fail: a rule with a PromQL syntax error does not pass."""
    broken = ALERTS_PATH.read_text().replace("signaling_ready == 0", "signaling_ready == (0")
    assert broken != ALERTS_PATH.read_text()
    path = tmp_path / "alerts.yaml"
    path.write_text(broken)
    result = _run(promtool, "check", "rules", path)
    assert result.returncode != 0, result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = _run(promtool, "test", "rules", ALERTS_TEST_PATH)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _tested_alerts() -> tuple[set[str], set[str]]:
    """Alerts with an evaluation expecting them to fire, and with one expecting silence."""
    doc = yaml.safe_load(ALERTS_TEST_PATH.read_text())
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in doc["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    return firing, quiet


def test_every_alert_has_a_firing_unit_test() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    firing, quiet = _tested_alerts()
    assert names == firing, f"untested: {sorted(names - firing)}; unknown: {sorted(firing - names)}"
    assert quiet, "no evaluation expecting silence"


def _mutate(tmp_path: Path, alert: str, expr: str) -> Path:
    """A copy of the rules and their unit tests where `alert` has another expression."""
    doc = load_rules()
    (rule,) = [r for r in alert_rules(doc) if r["alert"] == alert]
    rule["expr"] = expr
    (tmp_path / "alerts.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    tests = tmp_path / "alerts.test.yaml"
    tests.write_text(ALERTS_TEST_PATH.read_text())
    return tests


@pytest.mark.parametrize("alert", sorted(r["alert"] for r in alert_rules()))
def test_unit_tests_notice_an_alert_that_never_fires(
    promtool: str, tmp_path: Path, alert: str
) -> None:
    result = _run(promtool, "test", "rules", _mutate(tmp_path, alert, "vector(1) > 2"))
    assert result.returncode != 0, result.stdout
    assert f"alertname: {alert}," in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("alert", "old", "new"),
    [
        # 85% of the cap ("ok") would fire too.
        ("SignalingConnectionsNearLimit", "> 0.9", "> 0.8"),
        # Without the traffic condition an idle, waitless instance is "saturated".
        (
            "SignalingLoopSaturated",
            "> 0.9 and on (job, instance) sum without (type) "
            "(rate(signaling_messages_received_total[5m])) > 0",
            "> 0",
        ),
        # Without the scoping, every down target in Prometheus is a signaling instance.
        ("SignalingInstanceDown", "up == 0 and on", "up == 0 or on"),
    ],
)
def test_unit_tests_notice_an_alert_that_fires_too_often(
    promtool: str, tmp_path: Path, alert: str, old: str, new: str
) -> None:
    (rule,) = [r for r in alert_rules() if r["alert"] == alert]
    assert old in rule["expr"], rule["expr"]
    result = _run(
        promtool, "test", "rules", _mutate(tmp_path, alert, rule["expr"].replace(old, new))
    )
    assert result.returncode != 0, result.stdout
    assert f"alertname: {alert}," in result.stdout + result.stderr


# --- conventions -------------------------------------------------------------------------


def _rules() -> list[dict[str, Any]]:
    return alert_rules()


def test_every_alert_has_for_severity_summary_description_and_runbook() -> None:
    readme = ALERTS_README.read_text()
    anchors = {
        re.sub(r"[^a-z0-9-]", "", h.strip().lower().replace(" ", "-"))
        for h in re.findall(r"^#+ (.*)$", readme, re.M)
    }
    for rule in _rules():
        name = rule["alert"]
        assert re.fullmatch(r"Signaling[A-Z][A-Za-z]+", name), name
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "")), f"{name}: for"
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations["summary"] and "\n" not in annotations["summary"], name
        link = f"prometheus/README.md#{name.lower()}"
        assert link in annotations["description"], f"{name}: no runbook link {link}"
        assert name.lower() in anchors, f"{name}: no section in {ALERTS_README.name}"


def test_rules_read_only_metrics_the_server_exports() -> None:
    for rule in _rules():
        metrics = {s.metric for s in selectors(rule["expr"])}
        unknown = sorted(m for m in metrics if m != "up" and not allowed_metric(m))
        assert not unknown, f"{rule['alert']}: {unknown}"
