"""Process-wide admission: the connection cap from the file limit, start-up preflight."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from signaling.config import Settings
from signaling.telemetry.metrics import Metrics
from signaling.transport.admission import FD_RESERVE, Admission, connection_cap, raise_file_limit


def test_cap_comes_from_the_file_limit_unless_configured() -> None:
    assert connection_cap(0, 1024) == 1024 - FD_RESERVE
    assert connection_cap(500, 1024) == 500
    assert connection_cap(0, 10) == 16  # never absurdly small


def test_soft_file_limit_is_raised_to_the_hard_one() -> None:
    soft = raise_file_limit()
    assert soft == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert hard in (resource.RLIM_INFINITY, soft)


def test_sockets_over_the_cap_are_refused_and_counted() -> None:
    adm = Admission(Settings(max_connections=4), Metrics(), file_limit=1024)
    opened = [adm.socket_opened() for _ in range(4 + FD_RESERVE // 2 + 1)]
    assert opened.count(False) == 1 and opened[-1] is False
    assert adm.metrics.rejected["server_full"] == 1
    adm.socket_closed()
    assert adm.socket_opened()


def test_unreadable_key_or_certificate_exits_2(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.pem")
    for env in (
        {"SIGNALING_JWT_PUBLIC_KEY_FILE": missing},
        {"SIGNALING_TLS_CERT_FILE": missing, "SIGNALING_TLS_KEY_FILE": missing},
        {"SIGNALING_JWT_SECRET": "too short"},
        {"SIGNALING_TLS_CERT_FILE": missing},
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "signaling"],
            env={"PATH": "", **env},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert proc.returncode == 2, proc.stderr
        assert "SIGNALING_" in proc.stderr and "Traceback" not in proc.stderr
