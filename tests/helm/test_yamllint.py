"""yamllint where YAML is written by hand (Chart.yaml, values.yaml, the vendored CRD
schema) and on what the templates produce (the templates themselves are Go templates)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helm.chart import CHART, VALUE_SETS, render_raw

linter = pytest.importorskip("yamllint.linter")
yamllint_config = pytest.importorskip("yamllint.config")

SOURCE_RULES = """
extends: default
rules:
  line-length: {max: 100, allow-non-breakable-inline-mappings: true}
"""
# Helm's toYaml writes sequences unindented, and a template starting with a control
# line leaves one blank line; the dashboard's JSON keeps its own long lines.
RENDERED_RULES = """
extends: default
rules:
  document-start: disable
  empty-lines: {max-start: 1}
  indentation: {spaces: 2, indent-sequences: whatever}
  line-length: {max: 120}
"""
SOURCES = [
    CHART / "Chart.yaml",
    CHART / "values.yaml",
    Path(__file__).with_name("servicemonitor-crd-schema.yaml"),
    Path(__file__).with_name("prometheusrule-crd-schema.yaml"),
    CHART / "alerts" / "alerts.yaml",  # prometheus/alerts.yaml
]


def problems(text: str, rules: str, skip_line_length: bool = False) -> list[str]:
    config = yamllint_config.YamlLintConfig(rules)
    found = []
    for problem in linter.run(text, config):
        if skip_line_length and problem.rule == "line-length":
            continue
        found.append(f"{problem.line}:{problem.column} {problem.desc} ({problem.rule})")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_hand_written_yaml_is_clean(path: Path) -> None:
    assert problems(path.read_text(), SOURCE_RULES) == []


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_rendered_manifests_are_clean(name: str) -> None:
    found = {}
    for path, text in render_raw(VALUE_SETS[name]).items():
        if path.endswith("NOTES.txt") or not text.strip():
            continue
        # The dashboard's JSON and the alert rules' toYaml keep their own long lines.
        long_lines = path.endswith(("dashboard.yaml", "prometheusrule.yaml"))
        issues = problems(text, RENDERED_RULES, skip_line_length=long_lines)
        if issues:
            found[path] = issues
    assert found == {}


def test_yamllint_can_fail() -> None:
    assert problems("a: 1\na: 2\n", SOURCE_RULES)
