"""FaultLog: one line per cause per interval, with the count it stands for."""

from __future__ import annotations

import logging

import pytest

from signaling.telemetry.logs import FaultAdapter, FaultLog


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def setup(caplog: pytest.LogCaptureFixture) -> tuple[FaultLog, Clock, pytest.LogCaptureFixture]:
    clock = Clock()
    caplog.set_level(logging.DEBUG, logger="test.faults")
    return FaultLog(logging.getLogger("test.faults"), interval=10.0, clock=clock), clock, caplog


def test_a_flood_is_one_line_per_interval_per_cause_with_its_count(
    setup: tuple[FaultLog, Clock, pytest.LogCaptureFixture],
) -> None:
    faults, clock, caplog = setup
    for _ in range(1000):
        faults.fault("bad", "bad thing %d", 7)
        faults.fault("worse", "worse thing", level=logging.WARNING)
    assert [(r.getMessage(), r.cause, r.count) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("bad thing 7", "bad", 1),
        ("worse thing", "worse", 1),
    ]
    caplog.clear()
    clock.now += 9.9
    faults.fault("bad", "bad thing %d", 7)
    faults.flush()
    assert caplog.records == []
    clock.now += 0.1
    faults.fault("bad", "bad thing %d", 7)  # the 1001st, plus 999 counted before
    assert [(r.getMessage(), r.count) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("bad thing 7 (1001 times since the last report)", 1001)
    ]
    caplog.clear()
    faults.flush()  # "worse" had 999 more, its interval has passed
    assert [(r.getMessage(), r.levelno, r.count) for r in caplog.records] == [  # type: ignore[attr-defined]
        ("worse thing (999 times since the last report)", logging.WARNING, 999)
    ]
    caplog.clear()
    clock.now += 100
    faults.flush()  # nothing pending
    assert caplog.records == []


def test_causes_are_capped(setup: tuple[FaultLog, Clock, pytest.LogCaptureFixture]) -> None:
    faults, _, caplog = setup
    for n in range(2000):
        faults.fault(f"cause{n}", "x")
    assert len(caplog.records) == 257  # 256 causes, then everything else is "other"
    assert caplog.records[-1].cause == "other"  # type: ignore[attr-defined]


def test_library_warnings_and_errors_are_rate_limited_but_info_passes(
    setup: tuple[FaultLog, Clock, pytest.LogCaptureFixture],
) -> None:
    faults, _, caplog = setup
    adapter = FaultAdapter(faults)
    for _ in range(50):
        try:
            raise ValueError("boom")
        except ValueError:
            adapter.error("parser failed", exc_info=True)
        adapter.info("connection closed")
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is not None
    assert sum(r.getMessage() == "connection closed" for r in caplog.records) == 50
