"""The rendered Deployment's container, run with Docker the way a kubelet would run it.

No cluster can run here, so the pod spec is translated field by field: the image that
`make image` builds (scripts/build-image.sh), the rendered command and args, the
environment a kubelet assembles (envFrom the ConfigMap, env from the Secret, plus the
service-link variables), runAsUser/runAsGroup, the read-only root file system, the
dropped capabilities, no privilege escalation, the emptyDir mounts as tmpfs, the memory
limit, the container ports and the secret volumes (as read-only bind mounts). Then each
probe is asked what the kubelet asks, and the pod is stopped as a kubelet stops it:
preStop, then SIGTERM, all within the grace period. Once with the defaults, once with TLS
(a throwaway CA's certificate in the chart-made Secret) and an HS256 JWT secret.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import trustme
from websockets.exceptions import InvalidStatus

from tests.helm.chart import REPO_ROOT, container_env, memory_bytes, one, pod_spec, render
from tests.support.client import Client
from tests.support.engine import base_image, connect
from tests.unit.test_service_links import service_link_variables

pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]

# Its own tag, so parallel runs of the other container tests never swap it underneath.
IMAGE_REPOSITORY = "signaling"
IMAGE_TAG = "helm-test"
BUILD_TIMEOUT_S = 480.0


@pytest.fixture(scope="module")
def engine() -> Any:
    return connect()


@pytest.fixture(scope="module")
def image(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """SIGNALING_TEST_IMAGE, or the image `make image` builds, tagged for this module."""
    given = os.environ.get("SIGNALING_TEST_IMAGE")
    if given:
        return given
    tag = f"{IMAGE_REPOSITORY}:{IMAGE_TAG}"
    base = base_image(engine)
    log = tmp_path_factory.mktemp("helm-image") / "build.log"
    with log.open("w") as out:
        proc = subprocess.run(
            ["make", "image", f"IMAGE={tag}", f"BASE_IMAGE={base}"],
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    if proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        pytest.fail(f"make image IMAGE={tag} failed ({proc.returncode}):\n{tail}", pytrace=False)
    return tag


def kubelet_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    """What a kubelet puts in the environment: the container's env, the master Service's
    variables (always, even with enableServiceLinks: false), and, as a worst case for a
    pod without enableServiceLinks: false, the links of every Service in the namespace,
    including one named like the admin port setting used to be (signaling-metrics)."""
    env = service_link_variables("kubernetes", [("https", 443, "TCP")])
    for service in [d for d in docs if d["kind"] == "Service"]:
        ports = [(p["name"], p["port"], p["protocol"]) for p in service["spec"]["ports"]]
        env.update(service_link_variables(service["metadata"]["name"], ports))
    env.update(service_link_variables("signaling-metrics", [("metrics", 9091, "TCP")]))
    assert env["SIGNALING_METRICS_PORT"].startswith("tcp://")
    env.update(container_env(docs))  # the container's own variables win, as in Kubernetes
    return env


def secret_volume(
    docs: list[dict[str, Any]], volume: dict[str, Any], fs_group: int, where: Path
) -> Path:
    """Write a secret volume's files as a kubelet does (keys or items, defaultMode, owned
    by root:fsGroup) into a directory that is bind-mounted read-only."""
    source = volume["secret"]
    secret = one(docs, "Secret", source["secretName"])
    items = source.get("items") or [{"key": k, "path": k} for k in secret["data"]]
    where.mkdir(mode=0o755)
    for item in items:
        target = where / item["path"]
        target.write_bytes(base64.b64decode(secret["data"][item["key"]]))
        if os.geteuid() == 0:
            os.chown(target, 0, fs_group)
            target.chmod(source.get("defaultMode", 0o644))
        else:  # cannot give the file to fsGroup: let everyone read it instead
            target.chmod(0o444)
    where.chmod(0o755)
    return where


def docker_run_kwargs(docs: list[dict[str, Any]], scratch: Path) -> dict[str, Any]:
    """The rendered pod spec, field by field, as docker run options."""
    pod = pod_spec(docs)
    (container,) = pod["containers"]
    pod_sc, sc = pod["securityContext"], container["securityContext"]
    user = sc.get("runAsUser", pod_sc.get("runAsUser"))
    group = sc.get("runAsGroup", pod_sc.get("runAsGroup"))
    assert user and user != 0 and sc["runAsNonRoot"] is True
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"  # Docker's default profile
    assert not sc.get("privileged")
    volumes = {v["name"]: v for v in pod["volumes"]}
    tmpfs, binds = {}, {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "secret" in volume:
            assert mount.get("readOnly") is True, mount
            host = secret_volume(docs, volume, pod_sc["fsGroup"], scratch / mount["name"])
            binds[str(host)] = {"bind": mount["mountPath"], "mode": "ro"}
            continue
        empty_dir = volume.get("emptyDir")
        assert empty_dir is not None, f"only emptyDir and secret volumes run here: {mount}"
        size = memory_bytes(empty_dir.get("sizeLimit", "64Mi"))
        tmpfs[mount["mountPath"]] = f"size={size},uid={user},gid={group},mode=0700"
    kwargs: dict[str, Any] = {
        "image": container["image"],
        "environment": kubelet_env(docs),
        "user": f"{user}:{group}",
        "group_add": [str(pod_sc["fsGroup"])] if pod_sc.get("fsGroup") else [],
        "read_only": sc["readOnlyRootFilesystem"],
        "cap_drop": sc["capabilities"]["drop"],
        "cap_add": sc["capabilities"].get("add", []),
        "security_opt": [] if sc["allowPrivilegeEscalation"] else ["no-new-privileges"],
        "privileged": False,
        "tmpfs": tmpfs,
        "volumes": binds,
        "mem_limit": memory_bytes(container["resources"]["limits"]["memory"]),
        "ports": {f"{p['containerPort']}/tcp": ("127.0.0.1", None) for p in container["ports"]},
        "detach": True,
    }
    if "command" in container:
        kwargs["entrypoint"] = container["command"]
    if "args" in container:
        kwargs["command"] = container["args"]
    return kwargs


class Pod:
    """A running container standing for the pod, with its ports reachable on loopback."""

    def __init__(self, engine: Any, docs: list[dict[str, Any]], scratch: Path) -> None:
        self.docs = docs
        self.spec = pod_spec(docs)
        self.container_spec = self.spec["containers"][0]
        self.kwargs = docker_run_kwargs(docs, scratch)
        self.container = engine.containers.run(**self.kwargs)
        self.container.reload()
        published = self.container.attrs["NetworkSettings"]["Ports"]
        self.ports = {
            p["name"]: int(published[f"{p['containerPort']}/tcp"][0]["HostPort"])
            for p in self.container_spec["ports"]
        }

    def logs(self) -> str:
        return bytes(self.container.logs()).decode(errors="replace")

    def http(self, probe: dict[str, Any], timeout: float) -> int:
        """One httpGet probe as a kubelet makes it; the status, or 0 if nothing answered."""
        get = probe["httpGet"]
        port = self.ports[get["port"]] if isinstance(get["port"], str) else get["port"]
        url = f"{get.get('scheme', 'HTTP').lower()}://127.0.0.1:{port}{get['path']}"
        # The kubelet does not verify the certificate of an HTTPS probe.
        context = None
        if url.startswith("https"):
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as err:
            return int(err.code)
        except OSError:
            return 0

    def probe_until_success(self, name: str) -> int:
        """Probe as the kubelet does: every periodSeconds, failureThreshold times at most."""
        probe = self.container_spec[name]
        status = 0
        for _ in range(probe.get("failureThreshold", 3)):
            status = self.http(probe, probe.get("timeoutSeconds", 1))
            if 200 <= status < 400:
                return status
            self.container.reload()
            if self.container.status not in ("created", "running"):
                pytest.fail(f"container exited during {name}:\n{self.logs()}", pytrace=False)
            time.sleep(probe.get("periodSeconds", 10))
        pytest.fail(f"{name} failed (last status {status}); logs:\n{self.logs()}", pytrace=False)


@dataclass
class Variant:
    """Values to render, and how a client reaches the result."""

    values: dict[str, Any]
    ssl: ssl.SSLContext | None = None
    token: str | None = None


def tls_and_auth() -> Variant:
    """TLS from a chart-made Secret (a throwaway CA's certificate) and HS256 tokens."""
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    secret = "chart-test-" + "k" * 32
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    token = jwt.encode({"exp": int(time.time()) + 3600}, secret, algorithm="HS256")
    values = {
        "tls": {
            "enabled": True,
            "cert": b"".join(p.bytes() for p in cert.cert_chain_pems).decode(),
            "key": cert.private_key_pem.bytes().decode(),
        },
        "auth": {"mode": "secret", "jwtSecret": secret},
    }
    return Variant(values, client_ssl, token)


VARIANTS = {"defaults": Variant({}), "tls-and-auth": None}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> Variant:
    return VARIANTS[request.param] or tls_and_auth()


@pytest.fixture
def pod(engine: Any, image: str, variant: Variant, tmp_path: Path) -> Iterator[Pod]:
    repository, tag = image.rsplit(":", 1)
    docs = render({**variant.values, "image": {"repository": repository, "tag": tag}})
    running = Pod(engine, docs, tmp_path)
    try:
        yield running
    finally:
        running.container.remove(force=True)


async def test_rendered_pod_runs_answers_its_probes_and_stops_within_its_grace(
    pod: Pod, variant: Variant
) -> None:
    host_config = pod.container.attrs["HostConfig"]
    assert host_config["ReadonlyRootfs"] is True and host_config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host_config["SecurityOpt"]
    assert pod.container.attrs["Config"]["User"] == pod.kwargs["user"]
    assert pod.kwargs["environment"]["SIGNALING_METRICS_PORT"].startswith("tcp://")

    # Startup first (the kubelet holds the others back until it passes), then the others.
    assert await asyncio.to_thread(pod.probe_until_success, "startupProbe") == 200
    assert await asyncio.to_thread(pod.probe_until_success, "livenessProbe") == 200
    assert await asyncio.to_thread(pod.probe_until_success, "readinessProbe") == 200
    metrics = {"httpGet": {"path": "/metrics", "port": "admin"}}
    assert await asyncio.to_thread(pod.http, metrics, 3.0) == 200  # the ServiceMonitor's target
    # The demo page stays off unless asked for (SIGNALING_DEMO_PAGE=false): a plain GET of
    # / gets 426 Upgrade Required instead of the page (401 first when a token is required).
    scheme = pod.container_spec["readinessProbe"]["httpGet"]["scheme"]
    page = {"httpGet": {"path": "/", "port": "http", "scheme": scheme}}
    assert await asyncio.to_thread(pod.http, page, 3.0) == (401 if variant.token else 426)
    code, out = await asyncio.to_thread(
        pod.container.exec_run,
        ["/opt/venv/bin/python", "-c", "import os; print(os.getuid(), os.access('/', os.W_OK))"],
    )
    assert code == 0 and out.decode().split() == [pod.kwargs["user"].split(":")[0], "False"]

    # A client in a room, so the drain has someone to close.
    scheme = "wss" if variant.ssl else "ws"
    url = f"{scheme}://127.0.0.1:{pod.ports['http']}/"
    if variant.token:
        # The secret came from the chart's Secret through secretKeyRef, and the server took
        # it (a secret it refuses, e.g. shorter than 32 bytes, exits with status 2): no
        # WebSocket without a token, one with a token signed by it.
        env = dict(e.split("=", 1) for e in pod.container.attrs["Config"]["Env"])
        assert env["SIGNALING_JWT_SECRET"] == variant.values["auth"]["jwtSecret"]
        with pytest.raises(InvalidStatus) as refused:
            await Client.open(url, ssl=variant.ssl)
        assert refused.value.response.status_code == 401
        url += f"?token={variant.token}"
    client = await Client.open(url, ssl=variant.ssl, close_timeout=3)
    await client.create()

    # Deletion: the grace period starts, the kubelet runs preStop, then sends SIGTERM.
    grace = pod.spec["terminationGracePeriodSeconds"]
    deadline = time.monotonic() + grace
    pre_stop = pod.container_spec["lifecycle"]["preStop"]["exec"]["command"]
    pausing = asyncio.create_task(asyncio.to_thread(pod.container.exec_run, pre_stop))
    # While it pauses the server still serves: the endpoint is being removed meanwhile.
    assert await asyncio.to_thread(pod.probe_until_success, "readinessProbe") == 200
    code, out = await pausing
    assert code == 0, out
    assert not client.ws.close_code, "the preStop pause must not disturb clients"
    await asyncio.to_thread(pod.container.kill, signal="SIGTERM")
    remaining = deadline - time.monotonic()
    assert remaining > 0, "the preStop pause used up the whole grace period"
    code_and_reason = await client.closed(remaining)
    assert code_and_reason[0] == 1001, code_and_reason
    result = await asyncio.to_thread(
        pod.container.wait, timeout=max(deadline - time.monotonic(), 0.1)
    )
    logs = pod.logs()
    assert result["StatusCode"] == 0, logs
    assert time.monotonic() < deadline, "the kubelet would have killed it"
    assert "drained" in logs, logs


def test_the_translation_covers_the_whole_container_spec() -> None:
    """Every field of the rendered container is either translated above or inert here."""
    docs = render()
    (container,) = pod_spec(docs)["containers"]
    translated = {
        "name",
        "image",
        "imagePullPolicy",
        "ports",
        "envFrom",
        "env",
        "command",
        "args",
        "securityContext",
        "resources",
        "volumeMounts",
        "startupProbe",
        "livenessProbe",
        "readinessProbe",
        "lifecycle",
    }
    assert set(container) <= translated, set(container) - translated
    assert one(docs, "Deployment")["spec"]["template"]["spec"]["enableServiceLinks"] is False
