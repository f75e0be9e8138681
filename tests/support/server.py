"""Run the real server as a child process, the way operators run it.

Integration, compat and observability tests share this so every one of them exercises
`python -m signaling` with its real configuration parsing, signal handling and logging.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.http import http_get
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A running `python -m signaling` with its ports and captured log."""

    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None  # the client side of a server serving TLS

    @property
    def ws_url(self) -> str:
        if self.tls:
            return f"wss://localhost:{self.port}/"
        return f"ws://127.0.0.1:{self.port}/"

    url = ws_url

    @property
    def http(self) -> str:
        if self.tls:
            return f"https://localhost:{self.port}"
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 10.0) -> str:
        """Wait until the log contains ``text``; returns the log."""
        return wait_until(
            lambda: self.log() if text in self.log() else "",
            what=f"log line {text!r}",
            timeout=timeout,
            diag=self.log,
        )

    def terminate(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Send `sig` and wait for exit; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise


def wait_ready(server: ServerProcess, timeout: float = 15.0) -> None:
    """Until /readyz answers 200; RuntimeError at once if the process exits first."""

    def ready() -> bool:
        if server.proc.poll() is not None:
            raise RuntimeError(f"server exited with {server.proc.returncode}:\n{server.log()}")
        return http_get(server.http + "/readyz", timeout=1.0, context=server.tls)[0] == 200

    wait_until(ready, what="/readyz 200", timeout=timeout, ignore=(OSError,), diag=server.log)


@contextlib.contextmanager
def spawn_server(
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    metrics: bool = True,
    args: tuple[str, ...] = (),
    tls: ssl.SSLContext | None = None,
) -> Iterator[ServerProcess]:
    """Start the server on free loopback ports and stop it (SIGTERM) afterwards."""
    port = port if port is not None else free_port()
    metrics_port = free_port() if metrics else 0
    full_env = {
        **os.environ,
        "PORT": str(port),
        "HOST": os.environ.get("SIGNALING_TEST_HOST", "127.0.0.1"),
        "SIGNALING_METRICS_PORT_NUMBER": str(metrics_port),
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    with tempfile.NamedTemporaryFile(prefix="signaling-", suffix=".log", delete=False) as f:
        log_path = Path(f.name)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling", *args],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ServerProcess(proc, port, metrics_port, log_path, full_env, tls)
    try:
        wait_ready(server)
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        with contextlib.suppress(OSError):
            log_path.unlink()
