"""Where the alert rules live and how tests read them (shared by the observability and
Helm tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.prometheus import required_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
ALERTS_PATH = REPO_ROOT / "prometheus" / "alerts.yaml"
ALERTS_TEST_PATH = REPO_ROOT / "prometheus" / "alerts.test.yaml"
ALERTS_README = REPO_ROOT / "prometheus" / "README.md"


def load_rules() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(ALERTS_PATH.read_text())
    return data


def alert_rules(doc: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    doc = doc if doc is not None else load_rules()
    return [rule for group in doc["groups"] for rule in group["rules"] if "alert" in rule]


def promtool() -> str:
    """promtool ($PROMTOOL_BIN, PATH or Debian's path), or skip (fail in CI) without it."""
    return required_binary("promtool", "PROMTOOL_BIN")
