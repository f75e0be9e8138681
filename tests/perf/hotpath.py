"""Measure what one relayed signal costs the server, in calls rather than seconds.

The real server runs in-process on loopback; the load tool (``signaling.loadtest``, in
the same event loop) relays a fixed number of signals in rooms of three, and while it
does, ``sys.setprofile`` sees every Python-level call and every C function called from
Python, and the loop's task factory sees every task. Counting is deterministic enough to
put in ``make test`` where a timing could not be: the sharp checks (no task, no JSON
work, one encoding per signal) do not depend on batching at all; the call budget is a
ceiling with headroom for how messages happen to batch.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from collections.abc import Coroutine, Generator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import signaling
from signaling.config import Settings
from signaling.loadtest.plan import Plan
from signaling.loadtest.run import Run
from signaling.transport.server import Server

PACKAGE = str(Path(signaling.__file__).resolve().parent) + "/"
LOADTEST = PACKAGE + "loadtest/"
# Code a test injects into the hot path (tests/) counts as server code; the tool does not.
TESTS = str(Path(__file__).resolve().parents[1]) + "/"
JSON = str(Path(json.__file__).resolve().parent) + "/"
PEERS = 3  # two recipients per signal: "encoded once for all recipients" is visible


def compiled() -> bool:
    """True when the hot path runs as mypyc-compiled C (invisible to ``setprofile``)."""
    from signaling.core import wire

    return not str(wire.__file__).endswith(".py")


@dataclass
class Cost:
    signals: int = 0
    deliveries: int = 0
    server_calls: int = 0  # Python functions of the server (or injected into it) entered
    tasks: int = 0
    futures: int = 0
    json_calls: int = 0
    encodes: int = 0  # str.encode calls outside the load tool
    # asyncio.get_running_loop calls by server code: CPython's makes a getpid() system
    # call each time, so the hot path reads its loop once and keeps it.
    loop_lookups: int = 0
    by_function: Counter[str] = field(default_factory=Counter)

    def per_signal(self, count: int) -> float:
        return count / self.signals

    def violations(self, call_budget: float) -> list[str]:
        """What the hot path must never do, per relayed signal."""
        found = []
        if self.tasks:
            found.append(f"{self.tasks} tasks created for {self.signals} signals")
        if self.per_signal(self.futures) > 0.5:
            found.append(f"{self.per_signal(self.futures):.2f} futures per signal (per batch only)")
        if self.json_calls:
            found.append(f"{self.json_calls} calls into json for {self.signals} signals")
        if self.per_signal(self.encodes) > 1.05:
            found.append(f"{self.per_signal(self.encodes):.2f} str.encode per signal (once)")
        if self.per_signal(self.loop_lookups) > 0.01:
            found.append(
                f"{self.per_signal(self.loop_lookups):.2f} get_running_loop calls per signal "
                "(each a getpid() system call; keep the loop)"
            )
        if self.per_signal(self.server_calls) > call_budget:
            top = ", ".join(f"{name} {n / self.signals:.1f}" for name, n in self.top())
            found.append(
                f"{self.per_signal(self.server_calls):.1f} server calls per signal > "
                f"budget {call_budget} ({top})"
            )
        return found

    def top(self, n: int = 12) -> list[tuple[str, int]]:
        return self.by_function.most_common(n)


async def measure(signals_per_peer: int = 200, rooms: int = 4, window: int = 8) -> Cost:
    """Relay ``rooms * PEERS * signals_per_peer`` signals; count what the server did."""
    loop = asyncio.get_running_loop()
    server = Server(Settings(port=0, host="127.0.0.1", metrics_port=0))
    await server.start()
    cost = Cost()
    try:
        plan = Plan(
            url=f"ws://127.0.0.1:{server.port}/",
            rooms=rooms,
            peers=PEERS,
            window=window,
            max_per_peer=signals_per_peer,
            warmup_s=0,
            duration_s=60,
            drain_s=30,
            coalesce=True,
        )
        run = Run(plan, loop)
        await run.connect()
        await run.form_rooms()

        previous_factory = loop.get_task_factory()

        def count_tasks(
            loop: asyncio.AbstractEventLoop,
            coro: Generator[Any, None, Any] | Coroutine[Any, Any, Any],
            **kwargs: Any,
        ) -> asyncio.Future[Any]:
            cost.tasks += 1
            return asyncio.Task(coro, loop=loop, **kwargs)

        def profile(frame: FrameType, event: str, arg: Any) -> None:
            if event == "call":
                filename = frame.f_code.co_filename
                if frame.f_code.co_name == "create_future":  # asyncio's loop (uvloop's: C)
                    cost.futures += 1
                if filename.startswith(JSON):
                    cost.json_calls += 1
                elif filename.startswith((PACKAGE, TESTS)) and not filename.startswith(LOADTEST):
                    cost.server_calls += 1
                    cost.by_function[frame.f_code.co_qualname] += 1
                elif filename == "<string>" and frame.f_code.co_name == "__init__":
                    # A constructor that @dataclass generated: a call all the same, and
                    # one a hand-written __init__ (see signaling.core) would make visible.
                    cls = type(frame.f_locals.get("self"))
                    if cls.__module__.startswith("signaling.") and not cls.__module__.startswith(
                        "signaling.loadtest"
                    ):
                        cost.server_calls += 1
                        cost.by_function[f"{cls.__qualname__}.__init__"] += 1
            elif event == "c_call":
                name = arg.__name__
                if name == "create_future":
                    cost.futures += 1
                elif name == "encode" and not frame.f_code.co_filename.startswith(LOADTEST):
                    cost.encodes += 1
                elif name == "get_running_loop":
                    filename = frame.f_code.co_filename
                    if filename.startswith((PACKAGE, TESTS)) and not filename.startswith(LOADTEST):
                        cost.loop_lookups += 1

        loop.set_task_factory(count_tasks)
        sys.setprofile(profile)
        try:
            # Awaited directly (``wait_for`` would create a task of its own); the test's
            # timeout bounds them.
            run.start_sending()
            await run.exhausted.wait()
            run.stop_sending()
            await run.drained.wait()
        finally:
            sys.setprofile(None)
            loop.set_task_factory(previous_factory)
            run.close()
        cost.signals = run.sent
        cost.deliveries = run.delivered
        verdict = run.verdict()
        assert verdict.exactly_once, verdict
    finally:
        await server.shutdown()
    return cost
