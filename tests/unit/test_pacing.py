"""Loop pacing (``transport/pacing.py``), without an event loop.

The pacer's clock and sleep are injected: each test states the times at which writing
turns end and checks exactly when, and how long, the loop is made to wait.
"""

from __future__ import annotations

import pytest

from signaling.transport.pacing import Pacer, pause

WINDOW = 100e-6


class FakeTime:
    """A clock that only moves when told to, or when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(window: float = WINDOW) -> tuple[Pacer, FakeTime]:
    t = FakeTime()
    return Pacer(window, clock=t.clock, sleep=t.sleep), t


def test_pause_is_the_rest_of_the_window_and_never_more() -> None:
    assert pause(0.0, WINDOW) == pytest.approx(WINDOW)
    assert pause(30e-6, WINDOW) == pytest.approx(70e-6)
    assert pause(WINDOW, WINDOW) == 0.0  # a turn a whole window later: no wait
    assert pause(1.0, WINDOW) == 0.0
    assert pause(-1e-6, WINDOW) == 0.0  # a clock that stepped back never makes us wait
    assert pause(0.0, 0.0) == 0.0


def test_the_first_turn_and_an_idle_server_never_wait() -> None:
    p, t = pacer()
    p.turn_done()
    for _ in range(5):
        t.now += 2 * WINDOW  # turns further apart than the window: light load
        p.turn_done()
    assert t.sleeps == [] and p.naps == 0 and p.napped == 0.0


def test_turns_in_quick_succession_are_spaced_one_window_apart() -> None:
    p, t = pacer()
    p.turn_done()
    start = t.now
    for _ in range(10):
        t.now += 10e-6  # each turn's own work
        p.turn_done()
    assert len(t.sleeps) == 10
    assert all(s == pytest.approx(90e-6) for s in t.sleeps)
    assert t.now - start == pytest.approx(10 * WINDOW)  # ten turns, ten windows: no more
    assert p.naps == 10 and p.napped == pytest.approx(sum(t.sleeps))


def test_a_saturated_server_never_waits() -> None:
    p, t = pacer()
    p.turn_done()
    for _ in range(10):
        t.now += 3 * WINDOW  # every turn has more work than a window
        p.turn_done()
    assert t.sleeps == []


def test_a_long_turn_resets_the_window() -> None:
    p, t = pacer()
    p.turn_done()
    t.now += 5 * WINDOW
    p.turn_done()  # no wait
    t.now += 40e-6
    p.turn_done()  # measured from the end of the previous turn, not from the first
    assert t.sleeps == [pytest.approx(60e-6)]


def test_window_zero_turns_pacing_off() -> None:
    t = FakeTime()

    def no_clock() -> float:
        raise AssertionError("pacing off reads no clock")

    p = Pacer(0.0, clock=no_clock, sleep=t.sleep)
    for _ in range(3):
        p.turn_done()
    assert t.sleeps == []


def test_wait_counters_use_the_clock_not_the_request() -> None:
    """An oversleeping kernel (timer slack) is reported as it happened."""
    t = FakeTime()

    def slack_sleep(seconds: float) -> None:
        t.sleeps.append(seconds)
        t.now += seconds + 50e-6

    p = Pacer(WINDOW, clock=t.clock, sleep=slack_sleep)
    p.turn_done()
    t.now += 20e-6
    p.turn_done()
    assert p.napped == pytest.approx(80e-6 + 50e-6)
