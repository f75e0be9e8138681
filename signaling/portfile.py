"""The ports the server listens on, in a file, once it listens (``SIGNALING_PORT_FILE``).

Why: with ``PORT=0`` the kernel picks the port, and whoever started the process (a test
harness, a supervisor, a script running several servers side by side) has to learn
which one. The "listening on" log line is for people; this is for programs, and it
replaces picking a "free" port beforehand, which another process can take in between.

The file holds one JSON object, ``{"port": P, "metrics_port": M}`` (``M`` is 0 when the
admin port is off). It is written once every listener is bound, the server is ready and
its signal handlers are installed, so a reader that sees it may connect, or send
SIGTERM, at once; it is written to a temporary name and renamed, so it is never seen
half written; it is removed when the server exits cleanly.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator


class PortFileError(Exception):
    """The port file cannot be written: a start-up error (exit 2), not a crash."""


def write(path: str, port: int, metrics_port: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(json.dumps({"port": port, "metrics_port": metrics_port}) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise PortFileError(f"SIGNALING_PORT_FILE {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def announced(path: str, port: int, metrics_port: int) -> Iterator[None]:
    """The file exists (if ``path`` is set) while the body runs."""
    if not path:
        yield
        return
    write(path, port, metrics_port)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)
