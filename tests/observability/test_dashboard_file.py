"""Static checks of the Grafana dashboard JSON and the provisioning files."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
import yaml

from tests.observability.dashboard import (
    DASHBOARD_PATH,
    DASHBOARD_PROVISIONING,
    DATASOURCE_PROVISIONING,
    INSTANCE_MATCHER,
    JOB_MATCHER,
    SERVER_COUNTERS_AND_GAUGES,
    SERVER_HISTOGRAMS,
    Selector,
    all_panels,
    allowed_metric,
    load_dashboard,
    panel_queries,
    selectors,
    to_promql,
    variable_query,
)

DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


# --- the scanner the other checks rely on -------------------------------------------------


def test_selector_scanner_finds_metrics_and_their_matchers() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le, backend) (rate(a_bucket{job=~"$job", x="y{"}'
        "[$__rate_interval]))) / on (instance) group_left(version) b offset 5m "
        '+ count(c{instance="1"}) * 2.5e3 + sum without (le) (d[1m:30s])'
    )
    assert selectors(expr) == [
        Selector("a_bucket", 'job=~"$job", x="y{"'),
        Selector("b", ""),
        Selector("c", 'instance="1"'),
        Selector("d", ""),
    ]


def test_allowed_metric_accepts_only_exported_names() -> None:
    assert allowed_metric("signaling_rooms_live")
    assert allowed_metric("signaling_relay_duration_seconds_bucket")
    assert allowed_metric("process_resident_memory_bytes")
    assert not allowed_metric("signaling_relay_duration_seconds")  # histogram needs a suffix
    assert not allowed_metric("signaling_rooms_live_bucket")
    assert not allowed_metric("signaling_room_count")
    assert not allowed_metric("up")


# --- dashboard document ----------------------------------------------------------------------


def test_dashboard_is_valid_json_with_stable_identity(dashboard: dict[str, Any]) -> None:
    json.loads(DASHBOARD_PATH.read_text())  # parses (again) on its own
    assert dashboard["uid"] == "signaling-overview"
    assert dashboard["title"]
    assert 36 <= dashboard["schemaVersion"] <= 41
    # Provisioned from file: a baked-in numeric id or import-time inputs would break it.
    assert dashboard.get("id") is None
    assert "__inputs" not in dashboard
    assert dashboard["time"]["from"].startswith("now-")


def test_panel_ids_unique(dashboard: dict[str, Any]) -> None:
    raw = [p.get("id") for p in all_panels(dashboard)]
    assert all(isinstance(i, int) and i > 0 for i in raw), raw
    ids = [int(i) for i in raw if i is not None]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"duplicate panel ids {duplicates}"


def test_panels_have_known_types_and_titles(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard):
        assert panel["type"] in {"row", "timeseries", "stat", "gauge", "bargauge", "table"}, panel
        assert panel.get("title"), f"panel {panel['id']} has no title"


def test_grid_positions_valid_and_disjoint(dashboard: dict[str, Any]) -> None:
    rects: list[tuple[int, str, int, int, int, int]] = []
    for panel in all_panels(dashboard):
        pos = panel["gridPos"]
        x, y, w, h = pos["x"], pos["y"], pos["w"], pos["h"]
        for key, value in pos.items():
            assert type(value) is int, f"panel {panel['id']} gridPos.{key}={value!r}"
        assert 1 <= w <= GRID_COLUMNS, f"panel {panel['id']} w={w}"
        assert h >= 1, f"panel {panel['id']} h={h}"
        assert x >= 0 and y >= 0, f"panel {panel['id']} at ({x},{y})"
        assert x + w <= GRID_COLUMNS, f"panel {panel['id']} overflows: x={x} w={w}"
        if panel["type"] == "row":
            assert (x, w, h) == (0, GRID_COLUMNS, 1), f"row {panel['id']} gridPos {pos}"
        rects.append((panel["id"], panel.get("title", ""), x, y, w, h))
    for a, b in itertools.combinations(rects, 2):
        ida, ta, xa, ya, wa, ha = a
        idb, tb, xb, yb, wb, hb = b
        overlap = xa < xb + wb and xb < xa + wa and ya < yb + hb and yb < ya + ha
        assert not overlap, f"panels {ida} {ta!r} and {idb} {tb!r} overlap"


def test_rows_group_the_panels_below_them(dashboard: dict[str, Any]) -> None:
    top = dashboard["panels"]
    assert top[0]["type"] == "row", "the dashboard should start with a row"
    rows = [p for p in top if p["type"] == "row"]
    assert len(rows) >= 5
    # Panels are listed in reading order (Grafana keeps them sorted by y, then x).
    order = [(p["gridPos"]["y"], p["gridPos"]["x"]) for p in top]
    assert order == sorted(order)


def test_every_query_panel_uses_datasource_variable(dashboard: dict[str, Any]) -> None:
    panels_with_targets = [p for p in all_panels(dashboard) if p.get("targets")]
    assert len(panels_with_targets) >= 20
    for panel in panels_with_targets:
        assert panel.get("datasource") == DATASOURCE_REF, f"panel {panel['id']} datasource"
        for target in panel["targets"]:
            assert target.get("datasource") == DATASOURCE_REF, (
                f"panel {panel['id']} target {target.get('refId')} datasource"
            )
            assert target.get("expr", "").strip(), f"panel {panel['id']} empty expr"
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), f"panel {panel['id']} duplicate refIds"


def test_every_panel_with_data_has_a_unit(dashboard: dict[str, Any]) -> None:
    for panel in all_panels(dashboard):
        if panel.get("targets"):
            unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
            assert unit, f"panel {panel['id']} {panel['title']!r} has no unit"
    units = {
        p["fieldConfig"]["defaults"]["unit"] for p in all_panels(dashboard) if p.get("targets")
    }
    assert {"s", "bytes", "ops", "percentunit"} <= units


def test_templating_variables(dashboard: dict[str, Any]) -> None:
    variables = _variables(dashboard)
    assert {"datasource", "job", "instance"} <= variables.keys()
    ds = variables["datasource"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for name in ("job", "instance"):
        var = variables[name]
        assert var["type"] == "query", name
        assert var["datasource"] == DATASOURCE_REF, name
        assert var["multi"] is True and var["includeAll"] is True, name
        assert var.get("allValue") == ".*", f"{name}: All must be a regex, not a value list"
        query = variable_query(var)
        match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", query)
        assert match, f"{name}: {query!r}"
        assert match.group(2) == name
        metrics = {s.metric for s in selectors(match.group(1))}
        assert metrics and all(allowed_metric(m) for m in metrics), query
    # instance follows the chosen job
    assert JOB_MATCHER in variable_query(variables["instance"])
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names.index("datasource") < names.index("job") < names.index("instance")


def test_every_expression_filters_job_and_instance(dashboard: dict[str, Any]) -> None:
    queries = panel_queries(dashboard)
    assert queries
    for q in queries:
        sels = selectors(q.expr)
        assert sels, f"{q.name}: no metric selector in {q.expr!r}"
        for sel in sels:
            assert JOB_MATCHER in sel.matchers, f"{q.name}: {sel.metric} lacks {JOB_MATCHER}"
            assert INSTANCE_MATCHER in sel.matchers, (
                f"{q.name}: {sel.metric} lacks {INSTANCE_MATCHER}"
            )


def test_every_expression_uses_only_exported_metrics(dashboard: dict[str, Any]) -> None:
    unknown = {
        (q.name, s.metric)
        for q in panel_queries(dashboard)
        for s in selectors(q.expr)
        if not allowed_metric(s.metric)
    }
    assert not unknown, f"metrics the server does not export: {sorted(unknown)}"


def test_dashboard_covers_every_server_metric(dashboard: dict[str, Any]) -> None:
    used = {s.metric for q in panel_queries(dashboard) for s in selectors(q.expr)}
    base = {re.sub(r"_(bucket|sum|count)$", "", m) for m in used}
    missing = (SERVER_COUNTERS_AND_GAUGES | SERVER_HISTOGRAMS) - base
    assert not missing, f"server metrics with no panel: {sorted(missing)}"
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes"} <= used


def test_rates_and_quantiles_are_well_formed(dashboard: dict[str, Any]) -> None:
    for q in panel_queries(dashboard):
        for sel in selectors(q.expr):
            if sel.metric.endswith("_total") and sel.metric != "process_cpu_seconds_total":
                # Counters are only meaningful through rate/increase.
                assert re.search(r"(rate|increase)\(\s*" + sel.metric, q.expr), (
                    f"{q.name}: raw counter {sel.metric}"
                )
        if "histogram_quantile" in q.expr:
            assert re.search(r"histogram_quantile\(0?\.\d+,\s*sum by \(le\b", q.expr), q.name
            assert "_bucket{" in q.expr and "rate(" in q.expr, q.name
        for window in re.findall(r"\[([^\]]+)\]", q.expr):
            assert window == "$__rate_interval", f"{q.name}: fixed window [{window}]"
        to_promql(q.expr)  # no other Grafana variables left


def test_relay_latency_has_p50_p90_p99(dashboard: dict[str, Any]) -> None:
    quantiles = {
        float(m)
        for q in panel_queries(dashboard)
        if "signaling_relay_duration_seconds_bucket" in q.expr
        for m in re.findall(r"histogram_quantile\(([0-9.]+)", q.expr)
    }
    assert {0.5, 0.9, 0.99} <= quantiles


# --- provisioning ---------------------------------------------------------------------------


def test_datasource_provisioning() -> None:
    doc = yaml.safe_load(DATASOURCE_PROVISIONING.read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    assert ds["uid"] == "prometheus"
    assert ds["type"] == "prometheus"
    assert ds["access"] == "proxy"
    assert re.fullmatch(r"https?://[\w.-]+:\d+/?", ds["url"]), ds["url"]


def test_dashboard_provisioning_points_at_mounted_dashboards() -> None:
    doc = yaml.safe_load(DASHBOARD_PROVISIONING.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    readme = (DASHBOARD_PATH.parents[1] / "README.md").read_text()
    # The README's docker run mounts grafana/dashboards exactly where the provider reads.
    assert f"grafana/dashboards:{path}" in readme, path
    assert "grafana/provisioning/dashboards:/etc/grafana/provisioning/dashboards" in readme
    assert "grafana/provisioning/datasources:/etc/grafana/provisioning/datasources" in readme
    assert DASHBOARD_PATH.parent.name == "dashboards"
