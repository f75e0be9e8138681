"""Token buckets and the per-address table, driven by an injected clock."""

from __future__ import annotations

import pytest

from signaling.transport.limits import (
    AddressPolicy,
    AddressTable,
    ConnectionLimits,
    Rate,
    TokenBucket,
    retry_after_ms,
)


def test_bucket_allows_a_burst_then_the_rate() -> None:
    b = TokenBucket(Rate(per_second=2.0, burst=5), now=0.0)
    assert all(b.take(0.0) for _ in range(5))
    assert not b.take(0.0)
    assert b.retry_after(0.0) == pytest.approx(0.5)
    assert not b.take(0.49)
    assert b.take(0.5)
    assert not b.take(0.5)
    # Refill never exceeds the burst, however long the pause.
    assert b.full(1000.0)
    assert sum(b.take(1000.0) for _ in range(10)) == 5


def test_unlimited_bucket_never_refuses() -> None:
    b = TokenBucket(Rate(0, 0), now=0.0)
    assert all(b.take(0.0, cost=1e9) for _ in range(1000))
    assert b.retry_after(0.0) == 0.0


def test_oversized_cost_is_charged_against_a_full_bucket() -> None:
    b = TokenBucket(Rate(100.0, 100), now=0.0)
    assert b.take(0.0, cost=250)  # bigger than the burst: allowed once when full
    assert not b.take(0.0, cost=1)
    assert b.retry_after(0.0, cost=1) == pytest.approx(1.51)  # debt of 150, then 1 more


def test_retry_after_ms_rounds_up_and_is_positive() -> None:
    assert retry_after_ms(0.0) == 1
    assert retry_after_ms(0.0101) == 11


def test_connection_limits_refuse_over_messages_and_bytes() -> None:
    lim = ConnectionLimits(Rate(10, 10), Rate(1000, 1000), Rate(1, 3), now=0.0)
    assert all(lim.admit(0.0, 10) == 0.0 for _ in range(10))
    wait = lim.admit(0.0, 10)
    assert wait == pytest.approx(0.1) and lim.refused == "messages"
    lim2 = ConnectionLimits(Rate(1000, 1000), Rate(100, 100), Rate(1, 3), now=0.0)
    assert lim2.admit(0.0, 100) == 0.0
    assert lim2.admit(0.0, 50) == pytest.approx(0.5) and lim2.refused == "bytes"
    # A refused message charges nothing: the message bucket still has its tokens.
    assert lim2.msg_tokens == 999


def test_unlimited_connection_limits_never_refuse() -> None:
    lim = ConnectionLimits(Rate(0, 0), Rate(0, 0), Rate(0, 0), now=0.0)
    assert all(lim.admit(0.0, 1 << 20) == 0.0 for _ in range(10_000))
    assert lim.strike(0.0)


def test_connection_limits_refill_over_time() -> None:
    lim = ConnectionLimits(Rate(10, 10), Rate(1000, 1000), Rate(1, 3), now=0.0)
    for _ in range(10):
        lim.admit(0.0, 1)
    assert lim.admit(0.05, 1) > 0
    assert lim.admit(0.1, 1) == 0.0
    assert lim.admit(10.0, 1) == 0.0 and lim.msg_tokens == 9  # capped at the burst


def test_strikes_close_a_sustained_flood_but_not_an_occasional_overshoot() -> None:
    lim = ConnectionLimits(Rate(10, 10), Rate(0, 0), Rate(1.0, 3), now=0.0)
    # An honest client overshooting now and then: one strike every few seconds.
    for t in range(0, 60, 2):
        assert lim.strike(float(t))
    # A flood: strikes run out within the burst.
    results = [lim.strike(100.0) for _ in range(4)]
    assert results == [True, True, True, False]


def test_address_table_limits_each_address_separately() -> None:
    table = AddressTable(AddressPolicy(creates=Rate(1 / 60, 3)))
    assert [table.allow("a", "creates", 0.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = table.allow("a", "creates", 0.0)
    assert wait == pytest.approx(60.0)
    assert table.allow("b", "creates", 0.0) == 0.0  # another address is served
    assert table.allow("a", "creates", 60.0) == 0.0


def test_failed_join_guard_makes_scanning_4_digit_ids_take_hours() -> None:
    table = AddressTable(AddressPolicy(failed_joins=Rate(20 / 600, 20)))
    now = 0.0
    tried = 0
    while tried < 9000:
        if table.may("scanner", "failed_joins", now) == 0.0:
            table.charge("scanner", "failed_joins", now)
            tried += 1
        else:
            now += table.may("scanner", "failed_joins", now)
    assert now > 3 * 3600  # hours, not seconds


def test_may_does_not_take_and_charge_does() -> None:
    table = AddressTable(AddressPolicy(failed_joins=Rate(1.0, 2)))
    assert table.may("a", "failed_joins", 0.0) == 0.0
    assert table.may("a", "failed_joins", 0.0) == 0.0
    table.charge("a", "failed_joins", 0.0)
    table.charge("a", "failed_joins", 0.0)
    assert table.may("a", "failed_joins", 0.0) == pytest.approx(1.0)


def test_connection_and_room_counts() -> None:
    table = AddressTable(AddressPolicy(max_connections=2, max_rooms=1))
    assert table.open_connection("a", 0.0) and table.open_connection("a", 0.0)
    assert not table.open_connection("a", 0.0)
    assert table.open_connection("b", 0.0)
    table.close_connection("a", 0.0)
    assert table.open_connection("a", 0.0)
    assert table.hold_room("a", 0.0) and not table.hold_room("a", 0.0)
    table.release_room("a", 0.0)
    assert table.rooms_held("a") == 0 and table.hold_room("a", 0.0)
    table.release_room("zzz", 0.0)  # unknown address: no error, no entry
    assert "zzz" not in table


def test_table_is_bounded_and_keeps_entries_that_hold_something() -> None:
    table = AddressTable(AddressPolicy(creates=Rate(1.0, 5), max_connections=10), max_entries=100)
    table.open_connection("holder", 0.0)
    for i in range(10_000):
        table.allow(f"10.0.{i // 256}.{i % 256}", "creates", 0.0)
    assert len(table) <= 100
    assert table.connections_held("holder") == 1


def test_idle_entries_go_first() -> None:
    table = AddressTable(AddressPolicy(creates=Rate(1.0, 5)), max_entries=2)
    table.allow("busy", "creates", 0.0)
    table.allow("idle", "creates", -100.0)  # its bucket has refilled by now
    table.state("new", 0.0)
    assert "new" in table and "busy" in table and "idle" not in table
