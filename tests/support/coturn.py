"""Debian's coturn as a real TURN server on loopback, with ``use-auth-secret`` (TURN REST).

``turnutils_uclient`` (same package) checks a username/password pair against it: an
allocation either completes or is refused, which is what a browser's TURN client sees.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import ATTEMPTS, free_port, held_by_others
from tests.support.waiting import wait_until

TURNSERVER = shutil.which("turnserver") or "/usr/bin/turnserver"
UCLIENT = shutil.which("turnutils_uclient") or "/usr/bin/turnutils_uclient"
STUNCLIENT = shutil.which("turnutils_stunclient") or "/usr/bin/turnutils_stunclient"


def available() -> bool:
    return Path(TURNSERVER).exists() and Path(UCLIENT).exists()


@dataclass
class Coturn:
    port: int
    secret: str
    log_path: Path
    pid: int

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def allocate(self, username: str, password: str) -> bool:
        """Whether coturn grants an allocation for these credentials."""
        result = subprocess.run(
            [
                UCLIENT,
                "-u",
                username,
                "-w",
                password,
                "-p",
                str(self.port),
                "-e",
                "127.0.0.1",
                "-n",
                "1",
                "-m",
                "1",
                "-y",
                "127.0.0.1",
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return result.returncode == 0


def _wait_listening(proc: subprocess.Popen[bytes], log_path: Path, port: int) -> None:
    """Ready when it answers a STUN binding request (or fail when it dies, or when nothing
    answers within the failure guard: its port may be held by a process that is no STUN
    server)."""

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"turnserver exited {proc.returncode}:\n{log_path.read_text()}")
        try:
            probe = subprocess.run(
                [STUNCLIENT, "-p", str(port), "127.0.0.1"],
                capture_output=True,
                timeout=2,  # an unanswered probe retries forever: ask again
                check=False,
            )
        except subprocess.TimeoutExpired:
            return False
        return probe.returncode == 0 and b"reflexive" in probe.stdout

    wait_until(answers, what="a STUN answer from turnserver", timeout=60)


@contextlib.contextmanager
def coturn(secret: str) -> Iterator[Coturn]:
    """coturn on a loopback port nobody else holds. It cannot take port 0 (it would bind
    unrelated ports for UDP and TCP) and binds with SO_REUSEPORT, so a port another
    process took in the meantime is no error but a shared port: checked once it answers,
    and then it starts again on another port."""
    for attempt in range(ATTEMPTS):
        with _coturn(secret, free_port()) as server:
            if attempt < ATTEMPTS - 1 and held_by_others(server.port, server.pid):
                continue
            yield server
            return


@contextlib.contextmanager
def _coturn(secret: str, port: int) -> Iterator[Coturn]:
    relay_base = 40000 + (port % 200) * 100
    with tempfile.TemporaryDirectory(prefix="coturn-") as tmp:
        log_path = Path(tmp) / "turn.log"
        args = [
            TURNSERVER,
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            f"--min-port={relay_base}",
            f"--max-port={relay_base + 99}",
            "--use-auth-secret",
            f"--static-auth-secret={secret}",
            "--realm=signaling.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--log-file=stdout",
            "--simple-log",
            f"--userdb={tmp}/turndb",
            f"--pidfile={tmp}/turn.pid",
        ]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        try:
            _wait_listening(proc, log_path, port)
            yield Coturn(port, secret, log_path, proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
