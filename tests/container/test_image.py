"""The image itself: metadata, what is (not) inside, configuration errors."""

from __future__ import annotations

from typing import Any

import pytest

# The first test also builds the image (session fixture), which pytest-timeout counts.
pytestmark = [pytest.mark.container, pytest.mark.timeout(600)]


def test_image_metadata(engine: Any, image: str) -> None:
    config = engine.images.get(image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert {"8080/tcp", "9091/tcp"} <= set(config["ExposedPorts"])
    assert config["Entrypoint"][:3] == ["/opt/venv/bin/python", "-m", "signaling"]
    assert config.get("StopSignal") in ("SIGTERM", "15")
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD" and "signaling.healthcheck" in " ".join(health)
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/opt/venv/bin:")
    labels = config["Labels"]
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    assert labels["org.opencontainers.image.title"] == "signaling"
    for key in ("version", "source", "description", "revision"):
        assert labels.get(f"org.opencontainers.image.{key}"), key


def test_runtime_has_no_build_tools_and_runs_as_non_root(engine: Any, image: str) -> None:
    probe = (
        "import os, shutil, importlib.util as u; "
        "print(os.getuid(), os.getgid(), "
        "[t for t in ('gcc', 'cc', 'make', 'curl', 'pip') if shutil.which(t)], "
        "u.find_spec('pip') is not None, u.find_spec('signaling') is not None)"
    )
    out = engine.containers.run(
        image,
        entrypoint=["/opt/venv/bin/python", "-c", probe],
        remove=True,
        network_mode="none",
    )
    assert out.decode().split() == ["10001", "10001", "[]", "False", "True"]


def test_bad_configuration_exits_2(engine: Any, image: str) -> None:
    container = engine.containers.run(image, environment={"PORT": "not-a-port"}, detach=True)
    try:
        result = container.wait(timeout=30)
        assert result["StatusCode"] == 2, container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
