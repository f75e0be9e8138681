"""values.schema.json turns a typo or a wrong type into a message naming the key.

Checked through Helm itself: `Chart.validate_schema` and the render both run Helm's
schema validation, as `helm install` does.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helm.chart import CHART, VALUE_SETS, render_raw

helm_python = pytest.importorskip("helm_python")

WRONG: list[tuple[str, dict[str, Any], str]] = [
    ("unknown top-level key", {"replicas": 1}, "'replicas' not allowed"),
    ("unknown nested key", {"server": {"prot": 8080}}, "'prot' not allowed"),
    ("replicaCount as text", {"replicaCount": "1"}, "/replicaCount"),
    ("negative replicas", {"replicaCount": -1}, "/replicaCount"),
    ("port as text", {"server": {"port": "8080"}}, "/server/port"),
    ("port out of range", {"server": {"adminPort": 70000}}, "/server/adminPort"),
    ("log level", {"server": {"logLevel": "verbose"}}, "/server/logLevel"),
    ("demo page as text", {"server": {"demoPage": "yes"}}, "/server/demoPage"),
    (
        "origins as one string",
        {"server": {"allowedOrigins": "https://a"}},
        "/server/allowedOrigins",
    ),
    ("zero shutdown timeout", {"server": {"shutdownTimeoutSeconds": 0}}, "shutdownTimeoutSeconds"),
    ("lower-case extra variable", {"extraEnv": {"foo": "1"}}, "propertyName 'foo'"),
    ("extra variable as a list", {"extraEnv": {"FOO": [1]}}, "/extraEnv/FOO"),
    ("auth mode", {"auth": {"mode": "jwt"}}, "/auth/mode"),
    ("turn url scheme", {"turn": {"urls": ["https://turn"]}}, "/turn/urls/0"),
    ("tls enabled as text", {"tls": {"enabled": "true"}}, "/tls/enabled"),
    ("tracing endpoint scheme", {"tracing": {"endpoint": "otel:4318"}}, "/tracing/endpoint"),
    ("sampler", {"tracing": {"sampler": "sometimes"}}, "/tracing/sampler"),
    ("sampler ratio", {"tracing": {"samplerArg": "2"}}, "/tracing/samplerArg"),
    ("pause too long", {"preStopPauseSeconds": 600}, "/preStopPauseSeconds"),
    ("probe key typo", {"probes": {"liveness": {"period": 5}}}, "'period' not allowed"),
    ("service type", {"service": {"type": "Ingress"}}, "/service/type"),
    (
        "ingress path",
        {"ingress": {"hosts": [{"host": "a", "paths": [{"path": "x", "pathType": "Prefix"}]}]}},
        "/ingress/hosts/0/paths/0/path",
    ),
    (
        "shared client address as text",
        {"ingress": {"sharedClientAddress": "yes"}},
        "/ingress/sharedClientAddress",
    ),
    ("ingress tls without secret", {"ingress": {"tls": [{"hosts": ["a"]}]}}, "secretName"),
    (
        "hpa target above 100",
        {"autoscaling": {"targetCPUUtilizationPercentage": 150}},
        "/autoscaling/targetCPUUtilizationPercentage",
    ),
    ("scrape interval", {"serviceMonitor": {"interval": "often"}}, "/serviceMonitor/interval"),
    ("dashboard label as number", {"dashboard": {"labelValue": 1}}, "/dashboard/labelValue"),
    ("alerts enabled as text", {"alerts": {"enabled": "true"}}, "/alerts/enabled"),
    ("alerts key typo", {"alerts": {"rules": {}}}, "'rules' not allowed"),
    ("disabled unknown alert", {"alerts": {"disabled": ["InstanceDown"]}}, "/alerts/disabled/0"),
    ("rule label name", {"alerts": {"ruleLabels": {"team-name": "rtc"}}}, "propertyName"),
    ("rule label as number", {"alerts": {"ruleLabels": {"tier": 1}}}, "/alerts/ruleLabels/tier"),
    ("existing secret name", {"existingSecret": "Not_A_Name"}, "/existingSecret"),
    ("pull policy", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ("pod annotations as numbers", {"podAnnotations": {"a": 1}}, "/podAnnotations/a"),
    ("journal backend", {"journal": {"backend": "postgres"}}, "/journal/backend"),
    ("redis url scheme", {"journal": {"redis": {"url": "http://r"}}}, "/journal/redis/url"),
    ("redis prefix", {"journal": {"redis": {"prefix": "a b"}}}, "/journal/redis/prefix"),
]


@pytest.mark.parametrize(
    ("values", "where"), [(v, w) for _, v, w in WRONG], ids=[name for name, _, _ in WRONG]
)
def test_schema_rejects(values: dict[str, Any], where: str) -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as err:
        chart.validate_schema(chart.merge_values(values))
    assert where in str(err.value)
    # The render (what install runs) refuses them too, before any template.
    with pytest.raises(helm_python.HelmValuesError):
        render_raw(values)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_schema_accepts_every_documented_value_set(name: str) -> None:
    with helm_python.Chart.load(CHART) as chart:
        chart.validate_schema(chart.merge_values(VALUE_SETS[name]))


def test_every_default_value_is_described_by_the_schema() -> None:
    """No key of values.yaml escapes the schema (additionalProperties: false everywhere)."""
    with helm_python.Chart.load(CHART) as chart:
        schema = chart.schema
        defaults = chart.values
    assert schema is not None

    def walk(values: dict[str, Any], node: dict[str, Any], path: str) -> None:
        if "properties" in node:
            assert node.get("additionalProperties") is False, path or "(top)"
            for key, value in values.items():
                assert key in node["properties"], f"{path}.{key} has no schema"
                child = node["properties"][key]
                if isinstance(value, dict) and "properties" in child:
                    walk(value, child, f"{path}.{key}")

    walk(defaults, schema, "")
