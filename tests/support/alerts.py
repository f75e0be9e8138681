"""Where the alert rules live and how tests read them (shared by the observability and
Helm tests)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

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


def promtool_binary() -> str | None:
    """$PROMTOOL_BIN, else `promtool` on PATH, else Debian's path (package prometheus)."""
    for candidate in (
        os.environ.get("PROMTOOL_BIN"),
        shutil.which("promtool"),
        "/usr/bin/promtool",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None
