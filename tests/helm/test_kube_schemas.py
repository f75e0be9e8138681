"""Every rendered manifest is valid Kubernetes, strictly, at both ends of kubeVersion.

kubernetes-validate ships the API server's OpenAPI schemas for each release offline;
``strict`` rejects unknown fields the way `kubectl apply --validate=strict` does. The
ServiceMonitor, a custom resource, is checked against the Prometheus Operator's CRD
schema (vendored in servicemonitor-crd-schema.yaml, source and version in its header).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import CHART, VALUE_SETS, render

kubernetes_validate = pytest.importorskip("kubernetes_validate")
jsonschema = pytest.importorskip("jsonschema")

CRD_SCHEMA = Path(__file__).with_name("servicemonitor-crd-schema.yaml")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def kube_versions() -> list[str]:
    """The oldest version kubeVersion admits and the newest one with shipped schemas."""
    constraint = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)(?:-0)?", constraint)
    assert match, f"kubeVersion {constraint!r}: expected a lower bound only"
    oldest = ".".join(match.groups())
    return [oldest, kubernetes_validate.latest_version()]


def validate(doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def nulls(value: Any, path: str = "") -> list[str]:
    """Paths holding null: an empty template block (`env:` with nothing under it)."""
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}[{i}]")]
    return []


@pytest.mark.parametrize("version", kube_versions())
@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_manifests_validate_strictly(name: str, version: str) -> None:
    docs = render(VALUE_SETS[name])
    assert docs
    for doc in docs:
        assert not nulls(doc), (doc["kind"], nulls(doc))
        if doc["kind"] in CUSTOM_KINDS:
            continue
        validate(doc, version)


def test_the_kube_version_range_admits_both_versions() -> None:
    import helm_python

    oldest, newest = kube_versions()
    for version in (oldest, newest):
        report = helm_python.lint(CHART, {}, strict=True, kube_version=f"v{version}")
        assert report["messages"] == [] and report["errors"] == [], (version, report)


OFFLINE_KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {}}]
"""


def test_helm_install_dry_run_succeeds() -> None:
    """`helm install --dry-run=client`: schema, kubeVersion and templates, as installs run."""
    import helm_python

    with helm_python.Config(
        namespace="signaling", storage_driver="memory", kubeconfig_content=OFFLINE_KUBECONFIG
    ) as config:
        release = config.install(CHART, "signaling", {}, dry_run="client", namespace="signaling")
    assert (
        release["app_version"] == yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    )
    installed = sorted(d["kind"] for d in yaml.safe_load_all(release["manifest"]) if d)
    assert installed == sorted(d["kind"] for d in render())
    assert "ws://signaling.signaling.svc:8080/" in release["notes"]


def test_strict_validation_can_fail() -> None:
    """The validator really checks: an unknown field and a wrong type are rejected."""
    deployment = next(d for d in render() if d["kind"] == "Deployment")
    oldest, newest = kube_versions()
    unknown = copy.deepcopy(deployment)
    unknown["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFs"] = True
    wrong = copy.deepcopy(deployment)
    wrong["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = "thirty"
    for bad in (unknown, wrong):
        for version in (oldest, newest):
            with pytest.raises(kubernetes_validate.ValidationError):
                validate(bad, version)


def strict_schema(schema: Any) -> Any:
    """Kubernetes prunes (and strict validation rejects) fields a structural schema lacks."""
    if isinstance(schema, dict):
        out = {k: strict_schema(v) for k, v in schema.items()}
        open_ended = "additionalProperties" in out or out.get(
            "x-kubernetes-preserve-unknown-fields"
        )
        if "properties" in out and not open_ended:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict_schema(v) for v in schema]
    return schema


def servicemonitor_validator() -> Any:
    schema = strict_schema(yaml.safe_load(CRD_SCHEMA.read_text()))
    return jsonschema.Draft7Validator(schema)


def test_servicemonitor_matches_its_crd_schema() -> None:
    validator = servicemonitor_validator()
    (monitor,) = [d for d in render(VALUE_SETS["servicemonitor"]) if d["kind"] == "ServiceMonitor"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(monitor)]
    assert errors == []
    # Its metadata is ordinary ObjectMeta: check it as part of a ConfigMap.
    for version in kube_versions():
        validate(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": monitor["metadata"]}, version
        )


def test_servicemonitor_schema_rejects_a_wrong_endpoint() -> None:
    validator = servicemonitor_validator()
    (monitor,) = [d for d in render(VALUE_SETS["servicemonitor"]) if d["kind"] == "ServiceMonitor"]
    for field, value in (("interval", "15 seconds"), ("scheme", "ftp"), ("prot", "admin")):
        bad = copy.deepcopy(monitor)
        bad["spec"]["endpoints"][0][field] = value
        assert list(validator.iter_errors(bad)), field
    missing = copy.deepcopy(monitor)
    del missing["spec"]["selector"]
    assert list(validator.iter_errors(missing))
