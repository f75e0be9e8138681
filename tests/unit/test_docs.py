"""The README documents every setting, error code and metric the code has."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client import generate_latest

from signaling.config import KNOBS
from signaling.core.errors import ERROR_CODES
from signaling.telemetry.metrics import Metrics

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_in_the_configuration_table() -> None:
    for knob in KNOBS.values():
        row = next((line for line in README.splitlines() if f"| `{knob.env}` |" in line), None)
        assert row is not None, f"{knob.env} is missing from the README"
        assert f"`{knob.flag}`" in row
        default = knob.default
        if isinstance(default, float) and default.is_integer():
            default = int(default)
        if isinstance(default, bool):
            default = str(default).lower()
        if default not in ("", ()):
            assert f"`{default}`" in row, f"{knob.env}: default {default} not in {row}"


def test_every_error_code_is_documented() -> None:
    for code in ERROR_CODES:
        assert f"| `{code}` |" in README, code


def test_every_signaling_metric_is_documented() -> None:
    text = generate_latest(Metrics().registry()).decode()
    names = set(re.findall(r"^# TYPE (signaling_\w+) ", text, re.MULTILINE))
    assert len(names) >= 15
    for name in names:
        assert name in README, f"{name} is missing from the README"
