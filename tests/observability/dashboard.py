"""Read the Grafana dashboard and pull the PromQL out of it (shared by the observability tests)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAFANA_DIR = REPO_ROOT / "grafana"
DASHBOARD_PATH = GRAFANA_DIR / "dashboards" / "signaling.json"
DATASOURCE_PROVISIONING = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVISIONING = GRAFANA_DIR / "provisioning" / "dashboards" / "signaling.yaml"

# What the server exports on /metrics (issue 3). Histograms also yield _bucket/_sum/_count.
SERVER_COUNTERS_AND_GAUGES = frozenset(
    {
        "signaling_connections_open",
        "signaling_connections_opened_total",
        "signaling_rooms_live",
        "signaling_rooms_created_total",
        "signaling_rooms_expired_total",
        "signaling_messages_received_total",
        "signaling_signals_delivered_total",
        "signaling_protocol_errors_total",
        "signaling_resumes_total",
        "signaling_slow_consumer_disconnects_total",
        "signaling_actor_restarts_total",
        "signaling_rate_limited_total",
        "signaling_connections_rejected_total",
        "signaling_loop_pacing_waits_total",
        "signaling_loop_pacing_wait_seconds_total",
        "signaling_ready",
        "signaling_journal_failures_total",
        "signaling_connections_limit",
        "signaling_journal_overtaken_total",
        "signaling_journal_followed_events_total",
    }
)
SERVER_HISTOGRAMS = frozenset(
    {
        "signaling_room_members",
        "signaling_relay_duration_seconds",
        "signaling_relay_fanout",
        "signaling_mailbox_depth",
        "signaling_journal_append_duration_seconds",
    }
)
# prometheus_client's default process and platform collectors.
RUNTIME_PREFIXES = ("process_", "python_")

JOB_MATCHER = 'job=~"$job"'
INSTANCE_MATCHER = 'instance=~"$instance"'

# PromQL words that look like identifiers but are not metric names.
_PROMQL_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "and",
        "or",
        "unless",
        "inf",
        "nan",
        "atan2",
    }
)
# Aggregation operators may be followed by "by (...)"/"without (...)" before their "(".
_AGGREGATIONS = frozenset(
    {
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
        "limitk",
        "limit_ratio",
    }
)
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def allowed_metric(name: str) -> bool:
    """Is `name` a series the server exports (counter/gauge, histogram part, runtime)?"""
    if name in SERVER_COUNTERS_AND_GAUGES or name.startswith(RUNTIME_PREFIXES):
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in SERVER_HISTOGRAMS:
            return True
    return False


@dataclass(frozen=True)
class Selector:
    """One metric reference in an expression: its name and the text inside its {...}."""

    metric: str
    matchers: str


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" else 1
    return i + 1


def _skip_balanced(expr: str, i: int, open_ch: str, close_ch: str) -> int:
    """From expr[i] == open_ch, return the index just past the matching close_ch."""
    depth = 0
    while i < len(expr):
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced {open_ch}{close_ch} in {expr!r}")


def selectors(expr: str) -> list[Selector]:
    """Metric selectors in a PromQL expression (a small scanner, enough for dashboard queries).

    Skips strings, label lists of by/without/on/ignoring/group_*, range/subquery brackets,
    function names (identifier followed by "("), keywords and numbers/durations.
    """
    found: list[Selector] = []
    i = 0
    n = len(expr)
    while i < n:
        ch = expr[i]
        if ch in "\"'`":
            i = _skip_string(expr, i)
            continue
        if ch == "[":
            i = _skip_balanced(expr, i, "[", "]")
            continue
        if ch == "{":  # a selector without a metric name: {__name__=~...}
            end = _skip_balanced(expr, i, "{", "}")
            found.append(Selector("", expr[i + 1 : end - 1]))
            i = end
            continue
        if ch.isdigit() or (ch == "." and i + 1 < n and expr[i + 1].isdigit()):
            while i < n and (expr[i].isalnum() or expr[i] in "._"):
                i += 1
            continue
        m = _IDENT.match(expr, i)
        if not m:
            i += 1
            continue
        word = m.group(0)
        j = m.end()
        while j < n and expr[j].isspace():
            j += 1
        nxt = expr[j] if j < n else ""
        if word.lower() in _PROMQL_KEYWORDS:
            if word.lower() in {"by", "without", "on", "ignoring", "group_left", "group_right"}:
                if nxt == "(":
                    j = _skip_balanced(expr, j, "(", ")")
            elif word.lower() == "offset":  # skip the duration
                d = re.compile(r"-?[0-9A-Za-z_$]+").match(expr, j)
                j = d.end() if d else j
            i = j
            continue
        if nxt == "(" or word in _AGGREGATIONS:  # function or aggregation call
            i = j
            continue
        if nxt == "{":
            end = _skip_balanced(expr, j, "{", "}")
            found.append(Selector(word, expr[j + 1 : end - 1]))
            i = end
            continue
        found.append(Selector(word, ""))
        i = m.end()
    return found


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD_PATH.read_text())
    return data


def all_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in (collapsed) rows."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


@dataclass(frozen=True)
class PanelQuery:
    panel_id: int
    panel_title: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.panel_id}:{self.panel_title}/{self.ref_id}"


def panel_queries(dashboard: dict[str, Any]) -> list[PanelQuery]:
    out: list[PanelQuery] = []
    for panel in all_panels(dashboard):
        for target in panel.get("targets", []):
            out.append(
                PanelQuery(panel["id"], panel.get("title", ""), target["refId"], target["expr"])
            )
    return out


def variable_query(variable: dict[str, Any]) -> str:
    """The query string of a query variable (Grafana stores either a string or an object)."""
    query = variable.get("query")
    if isinstance(query, dict):
        return str(query.get("query", ""))
    return str(query or "")


def to_promql(
    expr: str, *, rate_interval: str = "1m", job: str = ".*", instance: str = ".*"
) -> str:
    """Substitute the Grafana variables the way Grafana would for "All"."""
    replacements = {
        "${__rate_interval}": rate_interval,
        "$__rate_interval": rate_interval,
        "${__interval}": rate_interval,
        "$__interval": rate_interval,
        "${job}": job,
        "$job": job,
        "${instance}": instance,
        "$instance": instance,
    }
    for var, value in replacements.items():
        expr = expr.replace(var, value)
    if "$" in expr:
        raise ValueError(f"unreplaced Grafana variable in {expr!r}")
    return expr
