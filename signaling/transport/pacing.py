"""Loop pacing: under steady load, poll the sockets less often so each turn does more.

Why: a relay that keeps up with its senders pays most of its system time for the calls
themselves, one ``read`` and one ``writev`` per socket per loop turn whatever they carry.
When the server is faster than the traffic, every turn finds a message or two per socket,
and a faster relay only buys more, emptier system calls (BENCHMARKS.md, "loop pacing":
2.7 messages per read at the bench's P=2 load, 3 µs of kernel time per message; about 10
per read, and a third of the CPU per message, with pacing). NAPI's interrupt coalescing,
Nagle's algorithm and Kafka's ``linger.ms`` make the same trade: wait a little while work
arrives steadily, so each wake-up finds more of it.

The rule (``pause``): after a turn that wrote frames, if the previous such turn ended less
than ``window`` ago, the loop sleeps for the rest of the window before it polls again.

- An idle or lightly loaded server never waits: its turns are further apart than the window.
- A saturated server never waits either: its turns take longer than the window.
- Only a server with capacity to spare under steady traffic waits, at most ``window`` per
  turn (plus the kernel's timer slack, 50 µs by default): that bounds what pacing adds to a
  message's latency. Data that arrives meanwhile waits in the kernel's socket buffers.

The sleep blocks the event loop on purpose: yielding to the loop would poll the sockets,
which is what pacing avoids. ``window`` is ``SIGNALING_LOOP_PACING_US``; 0 turns it off.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def pause(gap: float, window: float) -> float:
    """How long to wait after a turn that ended ``gap`` seconds after the previous one."""
    if 0.0 <= gap < window:
        return window - gap
    return 0.0


class Pacer:
    """Applies ``pause`` at the end of each writing turn (``Hub._flush``); clock and sleep
    are injected for tests."""

    __slots__ = ("_clock", "_last", "_sleep", "napped", "naps", "window")

    def __init__(
        self,
        window: float,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._last = -window  # the first turn never waits
        self.naps = 0  # turns that waited
        self.napped = 0.0  # seconds spent waiting

    def turn_done(self) -> None:
        window = self.window
        if not window:
            return
        now = self._clock()
        wait = pause(now - self._last, window)
        if wait:
            self._sleep(wait)
            end = self._clock()
            self.naps += 1
            self.napped += end - now
            now = end
        self._last = now
