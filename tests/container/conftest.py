"""Run the built image the way operators do, through a container engine (testcontainers).

The image is built once per session with scripts/build-image.sh (or taken from
SIGNALING_TEST_IMAGE). Without a container engine every test here is skipped, with the
reason, unless SIGNALING_REQUIRE_DOCKER=1 (CI), which turns that into a failure.

Environment:
  SIGNALING_TEST_IMAGE        use this image instead of building one
  SIGNALING_TEST_BASE_IMAGE   base for the build (default: python:3.11-slim-bookworm, or
                              the local signaling-base:bookworm when only that one is present)
  SIGNALING_REQUIRE_DOCKER=1  no engine, or a failed build, fails instead of skipping
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.client import Client
from tests.support.engine import base_image, connect, image_exists, unavailable
from tests.support.http import http_get
from tests.support.waiting import wait_until

# testcontainers reads its configuration when first imported, so the defaults go in
# before any import of it. Ryuk (the reaper container) would need a registry pull.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
if Path("/.dockerenv").exists() and "DOCKER_HOST" not in os.environ:
    # Inside a container running its own engine: published ports are on loopback,
    # not on the (absent) default gateway testcontainers would otherwise pick.
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    os.environ.setdefault("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_IMAGE_TAG = "signaling:test"
BUILD_TIMEOUT_S = 480.0
READY_TIMEOUT_S = 30.0
WS_PORT = 8080
METRICS_PORT = 9091


@pytest.fixture(scope="session")
def engine() -> Any:
    """A docker SDK client of an engine that answers (docker, or podman's docker API)."""
    return connect()


@pytest.fixture(scope="session")
def image(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The image under test: SIGNALING_TEST_IMAGE, or built from this checkout once."""
    given = os.environ.get("SIGNALING_TEST_IMAGE")
    if given:
        if not image_exists(engine, given):
            pytest.fail(f"SIGNALING_TEST_IMAGE={given} is not present in the engine")
        return given
    base = base_image(engine)
    log = tmp_path_factory.mktemp("image") / "build.log"
    env = {**os.environ, "IMAGE": TEST_IMAGE_TAG, "BASE_IMAGE": base}
    started = time.monotonic()
    with log.open("w") as out:
        try:
            proc = subprocess.run(
                [str(REPO_ROOT / "scripts" / "build-image.sh")],
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=BUILD_TIMEOUT_S,
                check=False,
            )
            status: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            status = f"timeout after {BUILD_TIMEOUT_S:.0f}s"
    if status != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        pytest.fail(
            f"building {TEST_IMAGE_TAG} from {base} failed ({status}); log {log}:\n{tail}",
            pytrace=False,
        )
    print(f"built {TEST_IMAGE_TAG} from {base} in {time.monotonic() - started:.0f}s")
    return TEST_IMAGE_TAG


@dataclass
class Running:
    """A started server container and where to reach it from the test process."""

    container: DockerContainer
    host: str
    port: int
    metrics_port: int
    tls: ssl.SSLContext | None = None  # trusts the server's certificate when TLS is on

    @property
    def ws_url(self) -> str:  # what tests.support.client.Client.open connects to
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}/"

    @property
    def http(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def wrapped(self) -> Any:
        return self.container.get_wrapped_container()

    def logs(self) -> str:
        out, err = self.container.get_logs()
        return (out + err).decode(errors="replace")

    def state(self) -> dict[str, Any]:
        self.wrapped.reload()
        state: dict[str, Any] = self.wrapped.attrs["State"]
        return state


def wait_ready(running: Running, timeout: float = READY_TIMEOUT_S) -> None:
    """Until /readyz answers 200. Fails early, with the logs, if the container exits."""

    def ready() -> bool:
        state = running.state()
        if state.get("Status") not in ("created", "running"):
            pytest.fail(
                f"container exited ({json.dumps(state)}) before ready; logs:\n{running.logs()}",
                pytrace=False,
            )
        return http_get(f"{running.http}/readyz", timeout=1.0, context=running.tls)[0] == 200

    try:
        wait_until(ready, what="/readyz 200", timeout=timeout, interval=0.1, ignore=(OSError,))
    except TimeoutError as exc:
        pytest.fail(f"{exc}; logs:\n{running.logs()}", pytrace=False)


StartContainer = Callable[..., Running]
MakePeer = Callable[..., Awaitable[Client]]


@pytest.fixture
def start_container(image: str) -> Iterator[StartContainer]:
    """Factory: start the image with env overrides and docker run kwargs; removed after."""
    from testcontainers.core.container import DockerContainer

    started: list[DockerContainer] = []

    def start(
        env: dict[str, str] | None = None,
        tmpfs: dict[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        **run_kwargs: Any,
    ) -> Running:
        # tmpfs values are docker mount options ("size=16m"). Older testcontainers have
        # no with_tmpfs_mount; newer ones pass their own tmpfs= and reject ours.
        has_tmpfs_api = hasattr(DockerContainer, "with_tmpfs_mount")
        if tmpfs and not has_tmpfs_api:
            run_kwargs = {**run_kwargs, "tmpfs": dict(tmpfs)}
        container = DockerContainer(image, **run_kwargs).with_exposed_ports(WS_PORT, METRICS_PORT)
        if tmpfs and has_tmpfs_api:
            for path, options in tmpfs.items():
                container.with_tmpfs_mount(path, options or None)
        for key, value in {"SIGNALING_LOG_FORMAT": "text", **(env or {})}.items():
            container.with_env(key, value)
        started.append(container)
        container.start()
        running = Running(
            container=container,
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(WS_PORT)),
            metrics_port=int(container.get_exposed_port(METRICS_PORT)),
            tls=tls,
        )
        wait_ready(running)
        return running

    yield start
    for container in started:
        try:
            container.stop()
        except Exception as exc:  # already gone; keep cleaning the rest
            print(f"cleanup of a test container failed: {exc}")


@pytest.fixture(scope="module")
def shared_server(image: str) -> Iterator[Running]:
    """One plain container for the read-mostly protocol and HTTP tests of a module."""
    from testcontainers.core.container import DockerContainer

    container = DockerContainer(image).with_exposed_ports(WS_PORT, METRICS_PORT)
    container.start()
    try:
        running = Running(
            container=container,
            host=container.get_container_host_ip(),
            port=int(container.get_exposed_port(WS_PORT)),
            metrics_port=int(container.get_exposed_port(METRICS_PORT)),
        )
        wait_ready(running)
        yield running
    finally:
        container.stop()


@pytest.fixture
async def peers() -> AsyncIterator[MakePeer]:
    """Factory of peers against a running container; all closed after the test."""
    opened: list[Client] = []

    async def make(running: Running, v2: bool = False) -> Client:
        extra: dict[str, Any] = {"ssl": running.tls} if running.tls else {}
        peer = await Client.open(running, v2, close_timeout=3, **extra)
        opened.append(peer)
        return peer

    yield make
    for peer in opened:
        await peer.ws.close()


REDIS_IMAGE_TAG = "signaling-redis:bookworm"
REDIS_BUILD_TIMEOUT_S = 300.0


@pytest.fixture(scope="session")
def redis_image(engine: Any) -> str:
    """A Redis image built like the base image (Debian's redis-server, mmdebstrap), since
    none can be pulled: SIGNALING_TEST_REDIS_IMAGE, or signaling-redis:bookworm, built
    once (scripts/ci/base-image.sh caches it by tag; .ci/run builds it up front)."""
    tag = os.environ.get("SIGNALING_TEST_REDIS_IMAGE", REDIS_IMAGE_TAG)
    if image_exists(engine, tag):
        return tag
    try:
        proc = subprocess.run(
            [str(REPO_ROOT / "scripts" / "ci" / "base-image.sh"), tag],
            env={**os.environ, "BASE_PACKAGES": "redis-server"},
            capture_output=True,
            text=True,
            timeout=REDIS_BUILD_TIMEOUT_S,
            check=False,
        )
        status: int | str = proc.returncode
        output = proc.stderr[-3000:]
    except subprocess.TimeoutExpired:
        status, output = f"timeout after {REDIS_BUILD_TIMEOUT_S:.0f}s", ""
    if status != 0 or not image_exists(engine, tag):
        unavailable(f"building {tag} failed ({status}):\n{output}")
    return tag
