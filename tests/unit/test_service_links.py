"""No setting can be set by Kubernetes' service links, whatever the Services are called.

A kubelet gives every container, for every Service in its namespace (unless the pod
says ``enableServiceLinks: false``), the variables below, where ``<SVC>`` is the
Service's name upper-cased with dashes as underscores. Installed as ``signaling``, a
Service named ``signaling-metrics`` once set ``SIGNALING_METRICS_PORT=tcp://10.0.0.7:9091``
and the server refused to start. These tests keep every setting name out of reach.
"""

from __future__ import annotations

import re

import pytest

from signaling import config
from signaling.config import KNOBS, RENAMED, ConfigError, load

# A Service name is a DNS-1035 label (a-z first, a-z0-9 last, '-' inside, <= 63 chars);
# a port name an IANA service name (<= 15 chars, a-z0-9 and '-', at least one letter).
SVC = r"[A-Z](?:[A-Z0-9_]{0,61}[A-Z0-9])?"
PORT_NAME = r"(?=[A-Z0-9_]*[A-Z])[A-Z0-9](?:[A-Z0-9_]{0,13}[A-Z0-9])?"
PROTO = r"(?:TCP|UDP|SCTP)"
SERVICE_LINK_PATTERNS = [
    re.compile(rf"^{SVC}_SERVICE_HOST$"),
    re.compile(rf"^{SVC}_SERVICE_PORT$"),
    re.compile(rf"^{SVC}_SERVICE_PORT_{PORT_NAME}$"),
    re.compile(rf"^{SVC}_PORT$"),
    re.compile(rf"^{SVC}_PORT_[0-9]{{1,5}}_{PROTO}$"),
    re.compile(rf"^{SVC}_PORT_[0-9]{{1,5}}_{PROTO}_(?:PROTO|PORT|ADDR)$"),
]


def service_link_variables(service: str, ports: list[tuple[str, int, str]]) -> dict[str, str]:
    """What a kubelet sets for one Service (name, [(port name, port, protocol)])."""
    prefix = service.upper().replace("-", "_")
    host = "10.96.0.17"
    env = {f"{prefix}_SERVICE_HOST": host, f"{prefix}_SERVICE_PORT": str(ports[0][1])}
    for name, port, proto in ports:
        if name:
            env[f"{prefix}_SERVICE_PORT_{name.upper().replace('-', '_')}"] = str(port)
        base = f"{prefix}_PORT_{port}_{proto}"
        env[base] = f"{proto.lower()}://{host}:{port}"
        env[f"{base}_PROTO"] = proto.lower()
        env[f"{base}_PORT"] = str(port)
        env[f"{base}_ADDR"] = host
    env[f"{prefix}_PORT"] = f"{ports[0][2].lower()}://{host}:{ports[0][1]}"
    return env


def clashes(name: str) -> bool:
    return any(p.match(name) for p in SERVICE_LINK_PATTERNS)


@pytest.mark.parametrize("env", sorted(k.env for k in KNOBS.values()))
def test_no_setting_looks_like_a_service_link(env: str) -> None:
    assert not clashes(env), f"{env} can be set by a Service's link variables"


def test_the_patterns_match_what_a_kubelet_sets() -> None:
    """The checker is not vacuous: it flags every variable a real Service produces."""
    made = service_link_variables(
        "signaling-metrics", [("admin", 9091, "TCP"), ("http-2", 8080, "TCP"), ("", 53, "UDP")]
    )
    assert "SIGNALING_METRICS_PORT" in made
    for name in made:
        assert clashes(name), name
    assert clashes("SIGNALING_METRICS_PORT")  # the old name of the admin port setting
    for fine in ("PORT", "HOST", "SIGNALING_METRICS_PORT_NUMBER", "SIGNALING_TLS_CERT_FILE"):
        assert not clashes(fine), fine


def test_service_links_for_any_service_leave_the_settings_alone() -> None:
    """Services named after each setting's prefixes: the server still starts, unchanged."""
    env: dict[str, str] = {}
    for knob in KNOBS.values():
        parts = knob.env.split("_")
        for i in range(1, len(parts) + 1):
            service = "-".join(parts[:i]).lower()
            env.update(service_link_variables(service, [("http", 8080, "TCP")]))
    for old in RENAMED:
        env[old] = "tcp://10.96.0.17:9091"  # a Service named like the old variable
    assert load([], env) == load([], {})


def test_the_old_admin_port_name_is_refused_with_the_new_one() -> None:
    with pytest.raises(ConfigError) as err:
        load([], {"SIGNALING_METRICS_PORT": "9100"})
    assert "SIGNALING_METRICS_PORT_NUMBER" in str(err.value)
    assert load([], {"SIGNALING_METRICS_PORT_NUMBER": "9100"}).metrics_port == 9100
    assert set(RENAMED.values()) <= {k.env for k in config.KNOBS.values()}
