"""Command line of ``python -m signaling.loadtest`` / ``signaling-loadtest``.

Exit status: 0 when every signal reached every other peer of its room exactly once and the
server reported no error, 1 otherwise, 2 when the run could not start (bad arguments,
connections or rooms refused).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from signaling.loadtest.plan import Plan
from signaling.loadtest.run import Run, SetupError, execute


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="signaling-loadtest",
        description="Drive a signaling deployment with R rooms x P peers relaying signals; "
        "report delivered msgs/s, latency percentiles and exactly-once delivery.",
    )
    p.add_argument("url", nargs="?", default="ws://127.0.0.1:8080/", help="ws:// or wss:// URL")
    p.add_argument("-r", "--rooms", type=int, default=50, help="rooms (default 50)")
    p.add_argument("-p", "--peers", type=int, default=2, help="peers per room (default 2)")
    p.add_argument(
        "--protocol", type=int, choices=(1, 2), default=1, help="1: seed protocol, 2: v2"
    )
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "-w", "--window", type=int, default=16, help="closed loop: signals in flight per peer"
    )
    load.add_argument("--rate", type=float, help="open loop: signals per second, all peers")
    p.add_argument("--payload", type=int, default=300, help="payload bytes (default 300)")
    p.add_argument("-d", "--duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds before measuring")
    p.add_argument("--max-per-peer", type=int, help="stop after this many signals per peer")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for stragglers")
    p.add_argument("--connect-concurrency", type=int, default=200)
    p.add_argument("--connect-timeout", type=float, default=10.0)
    p.add_argument(
        "--source-cidr",
        help="spread sockets over these source addresses (e.g. 127.5.0.0/24: 254 users)",
    )
    p.add_argument(
        "--idle",
        type=int,
        default=0,
        help="also hold this many connections that send nothing (default 0)",
    )
    p.add_argument(
        "--idle-room-size",
        type=int,
        default=0,
        help="idle connections in rooms of this size (default 0: outside rooms)",
    )
    p.add_argument(
        "--hold",
        type=float,
        default=0.0,
        help="after the verdict keep every connection open this many seconds "
        "(Ctrl-C or SIGTERM ends it sooner); a connection lost meanwhile fails the run",
    )
    p.add_argument(
        "--coalesce",
        action="store_true",
        help="write each socket's frames in one system call per loop turn (more load per "
        "core of this tool, but fewer, bigger reads for the server than real clients cause)",
    )
    p.add_argument("--cafile", help="CA bundle to trust for wss://")
    p.add_argument("--insecure", action="store_true", help="wss:// without verification")
    p.add_argument(
        "-H", "--header", action="append", default=[], help="extra handshake header NAME:VALUE"
    )
    p.add_argument("--server-pid", type=int, help="local server pid: report msgs per CPU-second")
    p.add_argument("--json", help="also write the report as JSON to this file ('-': stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return p


def plan_from(args: argparse.Namespace) -> Plan:
    headers = []
    for item in args.header:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"header must be NAME:VALUE, got {item!r}")
        headers.append((name.strip(), value.strip()))
    return Plan(
        url=args.url,
        rooms=args.rooms,
        peers=args.peers,
        protocol=args.protocol,
        window=args.window,
        rate=args.rate,
        payload_bytes=args.payload,
        warmup_s=args.warmup,
        duration_s=args.duration,
        max_per_peer=args.max_per_peer,
        drain_s=args.drain,
        connect_concurrency=args.connect_concurrency,
        connect_timeout_s=args.connect_timeout,
        source_cidr=args.source_cidr,
        coalesce=args.coalesce,
        cafile=args.cafile,
        insecure=args.insecure,
        headers=tuple(headers),
        server_pid=args.server_pid,
        idle=args.idle,
        idle_room_size=args.idle_room_size,
        hold_s=args.hold,
    )


class ProgressLine:
    """Once a second: elapsed time, deliveries in the last second, in flight, errors."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.last = 0

    def __call__(self, run: Run, elapsed: float) -> None:
        rate = run.delivered - self.last
        self.last = run.delivered
        if run.holding:
            phase = "holding"
        elif run.measuring:
            phase = "measuring"
        else:
            phase = "warmup" if run.sending else "draining"
        errors = sum(run.errors.values())
        line = (
            f"[{elapsed:6.1f}s] {phase:9} {rate:>9,} msgs/s  sent {run.sent:,}  "
            f"in flight {run.expected - run.delivered:,}  errors {errors}"
        )
        self.out.write(("\r" + line + "\x1b[K") if self.tty else line + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.tty:
            self.out.write("\n")


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        plan = plan_from(args)
    except ValueError as exc:
        print(f"signaling-loadtest: {exc}", file=sys.stderr)
        return 2
    progress = None if args.quiet else ProgressLine(sys.stderr)

    def on_hold(run: Run) -> None:
        # Always printed (also with -q): a script waits for this line before it looks
        # at the deployment with every connection in place.
        print(
            f"holding {run.open_connections():,} connections for up to {plan.hold_s:g} s "
            "(Ctrl-C or SIGTERM ends the hold)",
            file=sys.stderr,
            flush=True,
        )

    try:
        with asyncio.Runner(loop_factory=new_loop) as runner:
            report = runner.run(execute(plan, progress, on_hold))
    except SetupError as exc:
        print(f"signaling-loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        if progress is not None:
            progress.done()
    print(report.render())
    if args.json:
        text = json.dumps(report.as_dict(), indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write(text + "\n")
    return 0 if report.ok else 1
