"""Run a throwaway real Prometheus (Debian's /usr/bin/prometheus) and query its HTTP API."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import listening_ports
from tests.support.server import stop_process
from tests.support.waiting import wait_until

JOB = "signaling"


def find_binary(name: str, env: str) -> str | None:
    """$``env``, else ``name`` on PATH, else Debian's /usr/bin path (package prometheus);
    None if none exists."""
    for candidate in (os.environ.get(env), shutil.which(name), f"/usr/bin/{name}"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def prometheus_required() -> bool:
    """In CI (or when asked) a missing Prometheus is a failure, not a skip."""
    return os.environ.get("SIGNALING_REQUIRE_PROMETHEUS") == "1" or bool(os.environ.get("CI"))


def required_binary(name: str, env: str) -> str:
    """``find_binary``, or skip the calling test without it (fail it where Prometheus is
    required: ``prometheus_required``)."""
    binary = find_binary(name, env)
    if binary is None:
        reason = f"{name} not found (apt-get install prometheus, or set {env})"
        if prometheus_required():
            pytest.fail(reason + "; required because CI / SIGNALING_REQUIRE_PROMETHEUS=1 is set")
        pytest.skip(reason)
    return binary


class PrometheusError(RuntimeError):
    pass


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, path: str, params: dict[str, str] | None = None, timeout: float = 10.0) -> Any:
        """GET /api/v1/<path>; returns the decoded JSON body (also for 4xx/5xx answers)."""
        url = f"{self.base_url}/api/v1/{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as err:  # 400 bad_data / 422 execution errors
            return json.loads(err.read() or b"{}")

    def query(self, expr: str) -> dict[str, Any]:
        """Instant query at "now". Returns the whole response (status, data or error)."""
        body: dict[str, Any] = self.api("query", {"query": expr})
        return body

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        """Instant query that must succeed; returns (labels, value) per series."""
        body = self.query(expr)
        if body.get("status") != "success":
            raise PrometheusError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
        data = body["data"]
        if data["resultType"] == "scalar":
            return [({}, float(data["result"][1]))]
        return [(s["metric"], float(s["value"][1])) for s in data["result"]]

    def target_health(self) -> list[dict[str, Any]]:
        body = self.api("targets", {"state": "active"})
        targets: list[dict[str, Any]] = body.get("data", {}).get("activeTargets", [])
        return targets


@contextlib.contextmanager
def run_prometheus(
    binary: str,
    workdir: Path,
    targets: list[str],
    *,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
) -> Iterator[Prometheus]:
    """Start Prometheus scraping `targets` (host:port, path /metrics) as job "signaling",
    on a port the kernel picks (``127.0.0.1:0``; read back from its listening socket),
    evaluating `rule_files` (alerting rules) every scrape interval."""
    config = workdir / "prometheus.yml"
    config.write_text(
        "global:\n"
        f"  scrape_interval: {scrape_interval}\n"
        f"  scrape_timeout: {scrape_interval}\n"
        f"  evaluation_interval: {scrape_interval}\n"
        f"rule_files: {json.dumps([str(p) for p in rule_files])}\n"
        "scrape_configs:\n"
        f"  - job_name: {JOB}\n"
        "    metrics_path: /metrics\n"
        "    static_configs:\n"
        f"      - targets: {json.dumps(targets)}\n"
    )
    data_dir = workdir / "data"
    data_dir.mkdir()
    log_path = workdir / "prometheus.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={data_dir}",
                "--web.listen-address=127.0.0.1:0",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    prom = Prometheus(proc, "", log_path)

    def ready() -> bool:
        if proc.poll() is not None:
            raise PrometheusError(f"prometheus exited with {proc.returncode}:\n{prom.log()}")
        if not prom.base_url:
            ports = listening_ports(proc.pid)  # its web listener, once bound
            if not ports:
                return False
            (port,) = ports
            prom.base_url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(prom.base_url + "/-/ready", timeout=1) as resp:
            return bool(resp.status == 200)

    try:
        wait_until(
            ready,
            what="Prometheus ready",
            timeout=30,
            interval=0.25,
            ignore=(OSError, ValueError),
            diag=prom.log,
        )
        yield prom
    finally:
        stop_process(proc, timeout=10)
