"""The lock-free histogram counts each value in the bucket prometheus_client would."""

from __future__ import annotations

import math
from bisect import bisect_left

from hypothesis import given
from hypothesis import strategies as st

from signaling.telemetry.metrics import FANOUT_BUCKETS, LATENCY_BUCKETS, Histogram

_values = (
    st.floats(allow_nan=False)
    | st.integers(-5, 100).map(float)
    | st.sampled_from([*LATENCY_BUCKETS, *map(float, FANOUT_BUCKETS), float("inf"), -float("inf")])
)


@given(st.lists(_values, max_size=30), st.sampled_from([LATENCY_BUCKETS, FANOUT_BUCKETS]))
def test_observe_counts_in_the_bisect_left_bucket(
    values: list[float], bounds: tuple[float, ...]
) -> None:
    """``counts[i]`` holds the values in ``(bounds[i-1], bounds[i]]``: a value on a bound
    counts in that bound's bucket (Prometheus's ``le``), above all bounds in the last."""
    hist = Histogram(bounds)
    expected, total = [0] * (len(bounds) + 1), 0.0
    for value in values:
        hist.observe(value)
        expected[bisect_left(hist.bounds, value)] += 1
        total += value
    assert hist.counts == expected
    assert hist.sum == total or (math.isnan(hist.sum) and math.isnan(total))
