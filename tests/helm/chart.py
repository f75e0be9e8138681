"""Render helm/signaling with Helm's own library (helm-python-sdk), no helm binary needed.

``render`` returns the manifests Helm would apply, parsed; ``VALUE_SETS`` are the value
combinations every chart test walks through (defaults plus each optional part).
"""

from __future__ import annotations

import base64
import re
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "helm" / "signaling"
RELEASE = "signaling"
NAMESPACE = "signaling"

# A self-signed certificate is not needed to render; PEM-shaped text is.
PEM_CERT = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
PEM_KEY = "-----BEGIN PRIVATE KEY-----\nMIIBfake\n-----END PRIVATE KEY-----\n"
PEM_PUBLIC = "-----BEGIN PUBLIC KEY-----\nMIIBfake\n-----END PUBLIC KEY-----\n"

VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "hosts": [{"host": "rtc.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}],
            "tls": [{"hosts": ["rtc.example.com"], "secretName": "rtc-example-tls"}],
            "trustedProxies": ["10.42.0.0/16"],
        },
        "server": {"allowedOrigins": ["https://app.example.com"]},
    },
    "servicemonitor": {
        "serviceMonitor": {
            "enabled": True,
            "labels": {"release": "kube-prometheus-stack"},
            "interval": "15s",
            "scrapeTimeout": "5s",
            "metricRelabelings": [
                {"action": "drop", "sourceLabels": ["__name__"], "regex": "python_gc_.*"}
            ],
        }
    },
    "dashboard": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "RTC"}}},
    "alerts": {
        "alerts": {
            "enabled": True,
            "labels": {"release": "kube-prometheus-stack"},
            "ruleLabels": {"team": "rtc", "severity": "page"},
            "disabled": ["SignalingLoopSaturated"],
        }
    },
    "networkpolicy": {
        "networkPolicy": {
            "enabled": True,
            "clientsFrom": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}
                    }
                }
            ],
        }
    },
    "tls": {"tls": {"enabled": True, "cert": PEM_CERT, "key": PEM_KEY}},
    "tls-existing": {"tls": {"enabled": True, "existingSecret": "signaling-tls"}},
    "auth-secret": {
        "auth": {"mode": "secret", "jwtSecret": "s3cr3t", "audience": "rtc", "issuer": "idp"}
    },
    "auth-publickey": {"auth": {"mode": "publicKey", "jwtPublicKey": PEM_PUBLIC}},
    "auth-jwks": {
        "auth": {"mode": "jwks", "jwks": '{"keys": []}', "audience": "rtc", "issuer": "idp"}
    },
    "auth-existing": {"existingSecret": "signaling-keys", "auth": {"mode": "secret"}},
    "turn-tracing-demo": {
        "turn": {
            "urls": ["turn:turn.example.com:3478"],
            "secret": "turn-shared",
            "ttlSeconds": 600,
        },
        "server": {"stunUrls": ["stun:stun.example.com:3478"], "demoPage": True},
        "tracing": {"enabled": True, "endpoint": "http://otel-collector:4318"},
        "extraEnv": {"SIGNALING_JOURNAL_TOTAL_BYTES": "134217728"},
    },
    "spread": {
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "signaling"}},
            }
        ],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "kubernetes.io/arch",
                                    "operator": "In",
                                    "values": ["amd64", "arm64"],
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "tolerations": [{"key": "rtc", "operator": "Exists", "effect": "NoSchedule"}],
        "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 1},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": None, "minAvailable": 0},
    },
    "redis": {
        "journal": {"backend": "redis", "redis": {"url": "redis://:pw@redis-master:6379/0"}},
        "replicaCount": 3,
    },
    "redis-existing-autoscaled": {
        "journal": {"backend": "redis", "redis": {"prefix": "rtc-prod"}},
        "existingSecret": "signaling-keys",
        "autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 10},
        "podDisruptionBudget": {"enabled": True, "maxUnavailable": None, "minAvailable": 1},
    },
}


def render_raw(values: dict[str, Any] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` produces it (raises on failure)."""
    import helm_python

    with helm_python.Chart.load(CHART) as chart:
        rendered: dict[str, str] = chart.render(
            values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    return rendered


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every manifest of a release (NOTES.txt aside), parsed."""
    docs: list[dict[str, Any]] = []
    for path, text in sorted(render_raw(values).items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


def notes(values: dict[str, Any] | None = None) -> str:
    return next(t for p, t in render_raw(values).items() if p.endswith("NOTES.txt"))


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[d['kind'] for d in docs]}"
    return found[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def container_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment a kubelet gives the server container (envFrom, then env)."""
    container = pod_spec(docs)["containers"][0]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        cm = one(docs, "ConfigMap", source["configMapRef"]["name"])
        env.update(cm.get("data", {}))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        secret = one(docs, "Secret", ref["name"])
        env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (binary or decimal suffix) in bytes."""
    number, suffix = re.fullmatch(r"([0-9.]+)([KMGT]i?)?", quantity).groups()  # type: ignore[union-attr]
    scale = {None: 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    scale |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    return int(float(number) * scale[suffix])
