"""Loopback ports for the processes tests start (the server, Prometheus, coturn), raceless.

A port that was free a moment ago can be taken before the process it is handed to binds
it: parallel suites share the machine's ports. The test then fails, or worse, talks to
another suite's process. So the kernel picks (port 0) wherever the program can say which
port it got: the server writes it to ``SIGNALING_PORT_FILE``, and for any other program
``listening_ports`` reads its listening sockets from ``/proc``. Where a program cannot
bind port 0 usefully (coturn: one port for UDP and TCP), ``held_by_others`` checks once it
runs that nobody else shares its port (coturn binds with SO_REUSEPORT, so a collision is
no error), and the caller starts it again on another port.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

ATTEMPTS = 5  # starts on another port when the last one was taken in between
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp
TIME_WAIT = "06"  # a closed connection's remains: no process owns them


class PortTaken(RuntimeError):
    """A process could not bind the port it was given: someone took it in between."""


def free_port() -> int:
    """A TCP port nobody listens on right now (loopback): someone else may take it before
    it is used, so whoever uses it must check (``spawn_server``, ``held_by_others``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _inodes(pid: int) -> set[str]:
    """The socket inodes of process ``pid``'s open files."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _sockets(pid: int, kinds: tuple[str, ...]) -> list[tuple[int, str, str]]:
    """(local port, state, inode) of every socket in ``pid``'s network namespace."""
    rows = []
    for kind in kinds:
        try:
            lines = Path(f"/proc/{pid}/net/{kind}").read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            rows.append((int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]))
    return rows


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (Linux ``/proc``)."""
    mine = _inodes(pid)
    return {
        port
        for port, state, inode in _sockets(pid, ("tcp", "tcp6"))
        if state == LISTEN and inode in mine
    }


def held_by_others(port: int, pid: int) -> bool:
    """Whether a socket of a process other than ``pid`` is bound to ``port`` (TCP or UDP,
    any address; connections' leftovers in TIME_WAIT aside)."""
    mine = _inodes(pid)
    return any(
        bound == port and state != TIME_WAIT and inode not in mine
        for bound, state, inode in _sockets(pid, ("tcp", "tcp6", "udp", "udp6"))
    )
