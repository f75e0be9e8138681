"""The chart renders, lints clean, and says what it means, for every value set.

Rendering and linting are Helm's own code (helm-python-sdk binds Helm's Go library).
"""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART,
    REPO_ROOT,
    VALUE_SETS,
    container_env,
    kinds,
    notes,
    one,
    pod_spec,
    render,
    render_raw,
)

helm_python = pytest.importorskip("helm_python")


def chart_yaml() -> dict[str, Any]:
    meta: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return meta


def test_chart_metadata_and_app_version_is_the_package_version() -> None:
    meta = chart_yaml()
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert meta["apiVersion"] == "v2"
    assert meta["appVersion"] == project["version"]
    assert meta["kubeVersion"].startswith(">=")
    with helm_python.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == project["version"]
    image = pod_spec(render())["containers"][0]["image"]
    assert image == f"signaling:{project['version']}"


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_finds_nothing(name: str) -> None:
    report = helm_python.lint(CHART, VALUE_SETS[name], strict=True, namespace="signaling")
    assert report["messages"] == [] and report["errors"] == [], report


def test_lint_of_a_broken_chart_reports_it(tmp_path: Any) -> None:
    """The lint check above can fail: a chart without a version is reported."""
    broken = tmp_path / "signaling"
    broken.mkdir()
    (broken / "Chart.yaml").write_text("apiVersion: v2\nname: signaling\n")
    report = helm_python.lint(broken, strict=True)
    assert report["messages"] or report["errors"]


def test_defaults_render_a_single_instance_production_deployment() -> None:
    docs = render()
    assert kinds(docs) == [
        "ConfigMap",
        "Deployment",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    pod = pod_spec(docs)
    assert pod["enableServiceLinks"] is False
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "admin": 9091}
    assert container["livenessProbe"]["httpGet"] == {
        "path": "/healthz",
        "port": "http",
        "scheme": "HTTP",
    }
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    env = container_env(docs)
    assert env["PORT"] == "8080" and env["SIGNALING_METRICS_PORT_NUMBER"] == "9091"
    assert env["SIGNALING_DEMO_PAGE"] == "false"
    assert env["OTEL_TRACES_EXPORTER"] == "none"
    service = one(docs, "Service")
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == ports
    assert one(docs, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_grace_period_covers_the_pause_and_the_drain() -> None:
    docs = render()
    pod = pod_spec(docs)
    pause_cmd = pod["containers"][0]["lifecycle"]["preStop"]["exec"]["command"]
    assert pause_cmd[:2] == ["/opt/venv/bin/python", "-c"]
    pause = float(pause_cmd[2].split("sleep(")[1].rstrip(")"))
    drain = float(container_env(docs)["SIGNALING_SHUTDOWN_TIMEOUT_S"])
    assert pause > 0
    assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_every_object_has_the_standard_labels() -> None:
    for name, values in VALUE_SETS.items():
        for doc in render(values):
            labels = doc["metadata"]["labels"]
            for key in ("name", "instance", "version", "managed-by", "component", "part-of"):
                assert f"app.kubernetes.io/{key}" in labels, (name, doc["kind"], key)
            assert labels["app.kubernetes.io/managed-by"] == "Helm"
            assert labels["helm.sh/chart"] == "signaling-" + chart_yaml()["version"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicaCount": 2}, 'replicaCount is 2, but journal.backend is "memory"'),
        (
            {"autoscaling": {"enabled": True, "maxReplicas": 3}},
            'autoscaling.maxReplicas is 3, but journal.backend is "memory"',
        ),
        (
            {"terminationGracePeriodSeconds": 15},
            "terminationGracePeriodSeconds (15) must be longer than preStopPauseSeconds (5)",
        ),
        ({"auth": {"mode": "secret"}}, "set auth.jwtSecret"),
        ({"auth": {"mode": "publicKey"}}, "set auth.jwtPublicKey"),
        ({"auth": {"mode": "jwks"}}, "set auth.jwks"),
        ({"turn": {"urls": ["turn:t.example.com"]}}, "set turn.secret"),
        ({"tls": {"enabled": True}}, "set tls.existingSecret"),
        ({"tracing": {"enabled": True}}, "set tracing.endpoint"),
        ({"podDisruptionBudget": {"minAvailable": 1}}, "not both"),
        ({"journal": {"backend": "redis"}}, 'journal.backend is "redis": set journal.redis.url'),
        (
            {
                "journal": {"backend": "memory", "redis": {"url": "redis://r:6379"}},
                "replicaCount": 2,
            },
            'replicaCount is 2, but journal.backend is "memory"',
        ),
    ],
)
def test_render_refuses_what_cannot_work(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm_python.HelmRenderError) as err:
        render_raw(values)
    assert message in str(err.value)


def test_replicas_message_says_why() -> None:
    with pytest.raises(helm_python.HelmRenderError) as err:
        render_raw({"replicaCount": 2})
    assert "split across pods" in str(err.value)


def test_the_redis_journal_lifts_the_single_replica_rule() -> None:
    """With Redis, replicas and an autoscaler render, updates roll pod by pod, and the
    URL (it may hold a password) reaches the pod only through a Secret."""
    docs = render(VALUE_SETS["redis"])
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = container_env(docs)
    assert env["SIGNALING_JOURNAL"] == "redis"
    assert env["SIGNALING_REDIS_URL"] == "redis://:pw@redis-master:6379/0"
    assert env["SIGNALING_REDIS_PREFIX"] == "signaling"
    config = one(docs, "ConfigMap")["data"]
    assert "SIGNALING_REDIS_URL" not in config and "pw@" not in str(config)
    assert "Rooms live in Redis" in notes(VALUE_SETS["redis"])
    # An existing Secret: the pod reads its redis-url key; the chart makes no Secret.
    docs = render(VALUE_SETS["redis-existing-autoscaled"])
    assert "Secret" not in kinds(docs)
    (ref,) = [
        item["valueFrom"]["secretKeyRef"]
        for item in pod_spec(docs)["containers"][0]["env"]
        if item["name"] == "SIGNALING_REDIS_URL"
    ]
    assert ref == {"name": "signaling-keys", "key": "redis-url"}
    assert one(docs, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 10
    assert one(docs, "ConfigMap")["data"]["SIGNALING_REDIS_PREFIX"] == "rtc-prod"
    # The memory journal keeps its rules, and its pods hear no Redis setting.
    env = container_env(render())
    assert env["SIGNALING_JOURNAL"] == "memory"
    assert not [k for k in env if k.startswith("SIGNALING_REDIS")]
    assert one(render(), "Deployment")["spec"]["strategy"]["type"] == "Recreate"


def test_the_rendered_redis_settings_are_accepted_by_the_server() -> None:
    """What the chart renders passes the server's own start-up checks."""
    from signaling import config

    for name in ("redis", "defaults"):
        env = container_env(render(VALUE_SETS[name]))
        settings = config.load([], env)
        assert settings.journal_backend == ("redis" if name == "redis" else "memory")


def test_checksum_annotation_rolls_pods_on_configuration_change() -> None:
    def annotations(values: dict[str, Any]) -> dict[str, str]:
        pod = one(render(values), "Deployment")["spec"]["template"]
        result: dict[str, str] = pod["metadata"]["annotations"]
        return result

    base = annotations({})
    assert annotations({})["checksum/config"] == base["checksum/config"]
    changed = annotations({"server": {"logLevel": "debug"}})
    assert changed["checksum/config"] != base["checksum/config"]
    secret = annotations({"auth": {"mode": "secret", "jwtSecret": "a"}})
    rotated = annotations({"auth": {"mode": "secret", "jwtSecret": "b"}})
    assert secret["checksum/secret"] != rotated["checksum/secret"]


def test_ingress_is_websocket_friendly_and_trusts_its_proxies() -> None:
    docs = render(VALUE_SETS["ingress"])
    ingress = one(docs, "Ingress")
    notes_ = ingress["metadata"]["annotations"]
    assert int(notes_["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    assert int(notes_["nginx.ingress.kubernetes.io/proxy-send-timeout"]) >= 3600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "signaling", "port": {"name": "http"}}
    env = container_env(docs)
    assert env["SIGNALING_TRUSTED_PROXIES"] == "10.42.0.0/16"
    assert env["SIGNALING_ALLOWED_ORIGINS"] == "https://app.example.com"


def test_servicemonitor_scrapes_the_admin_port() -> None:
    docs = render(VALUE_SETS["servicemonitor"])
    monitor = one(docs, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "admin" and endpoint["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = one(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )


def test_dashboard_configmap_is_the_repository_dashboard_for_the_sidecar() -> None:
    source = REPO_ROOT / "grafana" / "dashboards" / "signaling.json"
    # A symbolic link (Helm reads files inside the chart only, and follows links), so the
    # chart can never ship a stale copy.
    in_chart = CHART / "dashboards" / "signaling.json"
    assert in_chart.is_symlink() and in_chart.resolve() == source.resolve()
    cm = one(render(VALUE_SETS["dashboard"]), "ConfigMap", "signaling-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "RTC"}
    assert json.loads(cm["data"]["signaling.json"]) == json.loads(source.read_text())


def test_networkpolicy_limits_who_reaches_each_port() -> None:
    policy = one(render(VALUE_SETS["networkpolicy"]), "NetworkPolicy")
    rules = {rule["ports"][0]["port"]: rule.get("from") for rule in policy["spec"]["ingress"]}
    assert rules["http"] == VALUE_SETS["networkpolicy"]["networkPolicy"]["clientsFrom"]
    metrics_ns = rules["admin"][0]["namespaceSelector"]["matchLabels"]
    assert metrics_ns == {"kubernetes.io/metadata.name": "monitoring"}


def test_tls_mounts_the_certificate_and_probes_use_https() -> None:
    for name, secret in (("tls", "signaling-tls"), ("tls-existing", "signaling-tls")):
        docs = render(VALUE_SETS[name])
        env = container_env(docs)
        assert env["SIGNALING_TLS_CERT_FILE"] == "/etc/signaling/tls/tls.crt"
        assert env["SIGNALING_TLS_KEY_FILE"] == "/etc/signaling/tls/tls.key"
        pod = pod_spec(docs)
        volume = next(v for v in pod["volumes"] if v["name"] == "tls")
        assert volume["secret"]["secretName"] == secret
        mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "tls")
        assert mount == {"name": "tls", "mountPath": "/etc/signaling/tls", "readOnly": True}
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert pod["containers"][0][probe]["httpGet"]["scheme"] == "HTTPS"
    assert one(render(VALUE_SETS["tls"]), "Secret")["type"] == "kubernetes.io/tls"
    assert "Secret" not in kinds(render(VALUE_SETS["tls-existing"]))


def test_auth_settings_come_from_a_secret() -> None:
    env = container_env(render(VALUE_SETS["auth-secret"]))
    assert env["SIGNALING_JWT_SECRET"] == "s3cr3t"
    assert env["SIGNALING_JWT_AUDIENCE"] == "rtc" and env["SIGNALING_JWT_ISSUER"] == "idp"
    cm = one(render(VALUE_SETS["auth-secret"]), "ConfigMap")
    assert "s3cr3t" not in json.dumps(cm), "a secret leaked into the ConfigMap"

    docs = render(VALUE_SETS["auth-publickey"])
    assert container_env(docs)["SIGNALING_JWT_PUBLIC_KEY_FILE"] == (
        "/etc/signaling/auth/jwt-public-key.pem"
    )
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "auth")
    assert volume["secret"]["items"] == [
        {"key": "jwt-public-key.pem", "path": "jwt-public-key.pem"}
    ]

    docs = render(VALUE_SETS["auth-jwks"])
    env = container_env(docs)
    assert env["SIGNALING_JWT_JWKS_FILE"] == "/etc/signaling/auth/jwks.json"
    assert env["SIGNALING_JWT_AUDIENCE"] == "rtc"
    volume = next(v for v in pod_spec(docs)["volumes"] if v["name"] == "auth")
    assert volume["secret"]["items"] == [{"key": "jwks.json", "path": "jwks.json"}]
    secret = one(docs, "Secret")
    assert set(secret["data"]) == {"jwks.json"}

    docs = render(VALUE_SETS["auth-existing"])
    assert "Secret" not in kinds(docs)
    (item,) = pod_spec(docs)["containers"][0]["env"]
    assert item["valueFrom"]["secretKeyRef"] == {"name": "signaling-keys", "key": "jwt-secret"}


def test_turn_tracing_demo_and_extra_settings_pass_through() -> None:
    env = container_env(render(VALUE_SETS["turn-tracing-demo"]))
    assert env["SIGNALING_TURN_URLS"] == "turn:turn.example.com:3478"
    assert env["SIGNALING_TURN_SECRET"] == "turn-shared"
    assert env["SIGNALING_TURN_TTL_S"] == "600"
    assert env["SIGNALING_STUN_URLS"] == "stun:stun.example.com:3478"
    assert env["SIGNALING_DEMO_PAGE"] == "true"
    assert env["OTEL_TRACES_EXPORTER"] == "otlp"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_TRACES_SAMPLER_ARG"] == "0.001"
    assert env["SIGNALING_JOURNAL_TOTAL_BYTES"] == "134217728"


def test_scheduling_hooks_and_autoscaler() -> None:
    docs = render(VALUE_SETS["spread"])
    pod = pod_spec(docs)
    assert pod["topologySpreadConstraints"] == VALUE_SETS["spread"]["topologySpreadConstraints"]
    assert pod["affinity"] == VALUE_SETS["spread"]["affinity"]
    assert pod["tolerations"] == VALUE_SETS["spread"]["tolerations"]
    assert "replicas" not in one(docs, "Deployment")["spec"]
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["spec"]["maxReplicas"] == 1
    assert hpa["spec"]["scaleTargetRef"]["name"] == "signaling"
    assert one(docs, "PodDisruptionBudget")["spec"] == {
        "minAvailable": 0,
        "selector": one(docs, "Deployment")["spec"]["selector"],
    }


def test_notes_tell_how_to_connect() -> None:
    assert "ws://signaling.signaling.svc:8080/" in notes()
    text = notes(VALUE_SETS["ingress"])
    assert "wss://rtc.example.com/" in text
    shared = {"ingress": {"enabled": True, "sharedClientAddress": True}}
    assert "share one address" in notes(shared)
    assert "share one address" not in text


def test_an_ingress_without_trusted_proxies_is_refused() -> None:
    """Behind an ingress every connection comes from the controller's pod: without its
    CIDRs in trustedProxies all users would share one address's limits, so a few users
    would lock out everyone. The chart refuses to render that instead of warning."""
    with pytest.raises(helm_python.HelmRenderError) as err:
        render_raw({"ingress": {"enabled": True}})
    message = str(err.value)
    assert "Set ingress.trustedProxies" in message
    assert "pod CIDR" in message
    assert "ingress.sharedClientAddress: true" in message


def test_an_ingress_with_trusted_proxies_or_an_explicit_opt_out_renders() -> None:
    """Either source of trusted proxies satisfies the check; the opt-out renders the
    server without any trusted proxy (every user keyed by the controller's address)."""
    by_server = {"ingress": {"enabled": True}, "server": {"trustedProxies": ["10.244.0.0/16"]}}
    env = container_env(render(by_server))
    assert env["SIGNALING_TRUSTED_PROXIES"] == "10.244.0.0/16"
    shared = render({"ingress": {"enabled": True, "sharedClientAddress": True}})
    assert "SIGNALING_TRUSTED_PROXIES" not in container_env(shared)
    assert one(shared, "Ingress")["spec"]["rules"][0]["host"] == "signaling.example.com"


def test_the_readme_install_command_renders() -> None:
    """The README's `helm install` example, its --set flags parsed by Helm's own parser."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme[readme.index("## Install on Kubernetes") :]
    block = section[section.index("```bash") : section.index("```", section.index("```bash") + 3)]
    command = block.replace("\\\n", " ")
    assert "helm install signaling ./helm/signaling" in command
    values: dict[str, Any] = {}
    for expression in re.findall(r"--set '?([^' ]+)'?", command):
        merge(values, helm_python.parse_set_string(expression))
    assert values["ingress"]["enabled"] is True
    docs = render(values)
    assert one(docs, "Ingress")["spec"]["rules"][0]["host"] == "rtc.example.com"
    assert container_env(docs)["SIGNALING_TRUSTED_PROXIES"] == "10.42.0.0/16"
    assert pod_spec(docs)["containers"][0]["image"].startswith("registry.example.com/signaling:")


def merge(into: dict[str, Any], more: dict[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        elif isinstance(value, list) and isinstance(into.get(key), list):
            for i, item in enumerate(value):  # --set 'a[0].b=1' --set 'a[0].c=2'
                if i < len(into[key]) and isinstance(item, dict):
                    merge(into[key][i], item)
                elif i >= len(into[key]):
                    into[key].append(item)
        else:
            into[key] = value
