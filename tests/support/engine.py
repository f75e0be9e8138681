"""The container engine for the container and Helm tests: connect, or skip with the reason
(fail instead under SIGNALING_REQUIRE_DOCKER=1, as CI sets it), and pick the base image.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NoReturn

import pytest

DEFAULT_BASE_IMAGE = "python:3.11-slim-bookworm"
LOCAL_BASE_IMAGE = "signaling-base:bookworm"
REQUIRE_ENGINE = os.environ.get("SIGNALING_REQUIRE_DOCKER") == "1"


def unavailable(reason: str) -> NoReturn:
    if REQUIRE_ENGINE:
        pytest.fail(f"{reason} (SIGNALING_REQUIRE_DOCKER=1)", pytrace=False)
    pytest.skip(reason)


def image_exists(engine: Any, image: str) -> bool:
    try:
        engine.images.get(image)
    except Exception:
        return False
    return True


def connect() -> Any:
    """A docker SDK client of an engine that answers (docker, or podman's docker API)."""
    try:
        docker = importlib.import_module("docker")  # untyped; comes with testcontainers
    except ImportError:
        unavailable("the docker SDK (testcontainers) is not installed")
    try:
        client = docker.from_env(timeout=10)
        client.ping()
    except Exception as exc:
        unavailable(f"no container engine answers ({type(exc).__name__}: {exc})")
    return client


def base_image(engine: Any) -> str:
    """SIGNALING_TEST_BASE_IMAGE, else the official base, or the local one where no
    registry is reachable (rather than fail on a pull)."""
    chosen = os.environ.get("SIGNALING_TEST_BASE_IMAGE")
    if chosen:
        return chosen
    if not image_exists(engine, DEFAULT_BASE_IMAGE) and image_exists(engine, LOCAL_BASE_IMAGE):
        return LOCAL_BASE_IMAGE
    return DEFAULT_BASE_IMAGE
