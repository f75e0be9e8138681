"""Run the real server as a child process, the way operators run it.

Integration, compat and observability tests share this so every one of them exercises
`python -m signaling` with its real configuration parsing, signal handling and logging.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.http import http_get
from tests.support.ports import ATTEMPTS, PortTaken, free_port
from tests.support.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class ServerProcess:
    """A running `python -m signaling` with its ports and captured log."""

    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    tls: ssl.SSLContext | None = None  # the client side of a server serving TLS
    port_file: Path | None = None  # SIGNALING_PORT_FILE, removed when the server exits

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


def _read_ports(path: Path) -> dict[str, int] | None:
    """What the server wrote to SIGNALING_PORT_FILE (renamed into place: whole or absent)."""
    try:
        ports: dict[str, int] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return ports


def _start(
    env: Mapping[str, str] | None,
    port: int | None,
    metrics: bool,
    args: tuple[str, ...],
    tls: ssl.SSLContext | None,
    workdir: Path,
) -> ServerProcess:
    """One start; ``PortTaken`` if the admin port chosen here was taken meanwhile."""
    env_ = env or {}
    port_file = workdir / "ports.json"
    port_file.unlink(missing_ok=True)
    log_path = workdir / "server.log"
    full_env = {
        **os.environ,
        "PORT": str(port if port is not None else 0),
        "HOST": os.environ.get("SIGNALING_TEST_HOST", "127.0.0.1"),
        "SIGNALING_METRICS_PORT_NUMBER": str(free_port() if metrics else 0),
        "PYTHONUNBUFFERED": "1",
        **env_,
        "SIGNALING_PORT_FILE": str(port_file),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "signaling", *args],
            cwd=REPO_ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def listening() -> dict[str, int] | None:
        ports = _read_ports(port_file)
        if ports is None and proc.poll() is not None:
            text = log_path.read_text(errors="replace")
            taken = "cannot listen: SIGNALING_METRICS_PORT_NUMBER" in text
            if proc.returncode == 2 and taken and "SIGNALING_METRICS_PORT_NUMBER" not in env_:
                raise PortTaken(text)
            raise RuntimeError(f"server exited with {proc.returncode}:\n{text}")
        return ports

    try:
        ports = wait_until(
            listening,
            what="SIGNALING_PORT_FILE",
            timeout=15.0,
            diag=lambda: log_path.read_text(errors="replace"),
        )
    except BaseException:
        stop_process(proc)
        raise
    assert ports is not None
    return ServerProcess(
        proc, ports["port"], ports["metrics_port"], log_path, full_env, tls, port_file
    )


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def spawn_server(
    env: Mapping[str, str] | None = None,
    *,
    port: int | None = None,
    metrics: bool = True,
    args: tuple[str, ...] = (),
    tls: ssl.SSLContext | None = None,
) -> Iterator[ServerProcess]:
    """Start the server on loopback and stop it (SIGTERM) afterwards.

    No port is guessed: the server binds ``PORT=0`` (unless ``port`` is given) and writes
    the ports it got to ``SIGNALING_PORT_FILE``; ``ServerProcess`` takes them from there.
    A port found free and handed over later can be taken in between by whatever else runs
    (parallel suites), and a test would then talk to another process. The admin port
    cannot be 0 (that turns it off), so it is such a port: when it was taken, the server
    exits 2 before it writes the file, and it is started again on another one.
    """
    workdir = Path(tempfile.mkdtemp(prefix="signaling-"))
    try:
        for attempt in range(ATTEMPTS):
            try:
                server = _start(env, port, metrics, args, tls, workdir)
                break
            except PortTaken:
                if attempt == ATTEMPTS - 1:
                    raise
        try:
            wait_ready(server)
            yield server
        finally:
            stop_process(server.proc)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
