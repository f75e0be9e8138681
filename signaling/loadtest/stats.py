"""Counting what happened: deliveries, latency and the exactly-once verdict.

Every signal carries its sender's index ``s``, the sender's sequence number ``n`` and its
send time ``t`` (microseconds on the run's clock) inside the payload. A receiver keeps,
per sender of its room, how many signals it got and the next ``n`` it expects: a signal
below that is a duplicate or out of order. After the drain, every receiver must have got
exactly the signals its senders had accepted (sent minus those the server refused with
``overloaded``, which it announces rather than dropping silently).
"""

from __future__ import annotations

import math
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any


def percentile(sorted_values: array[int] | list[int], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; NaN when empty."""
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100.0 * n))
    return float(sorted_values[rank - 1])


@dataclass
class Verdict:
    """Whether each signal reached each other member of its room exactly once."""

    expected: int = 0
    delivered: int = 0
    missing: int = 0
    duplicated_or_reordered: int = 0
    rejected: int = 0

    @property
    def exactly_once(self) -> bool:
        return self.missing == 0 and self.duplicated_or_reordered == 0 and self.delivered > 0


@dataclass
class Report:
    url: str
    protocol: int
    rooms: int
    peers: int
    mode: str
    payload_bytes: int
    measured_s: float
    sent: int
    delivered: int
    delivered_per_s: float
    latency_ms: dict[str, float]
    latency_samples: int
    verdict: Verdict
    errors: Counter[str] = field(default_factory=Counter)
    server_cpu_s: float | None = None
    loadgen_cpu_s: float = 0.0
    #: sockets opened (relaying and idle), of them idle, and still open at the end
    connections: int = 0
    idle: int = 0
    held: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict.exactly_once and not self.errors and self.held == self.connections

    @property
    def per_server_cpu_s(self) -> float | None:
        if not self.server_cpu_s:
            return None
        return self.delivered / self.server_cpu_s

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "protocol": self.protocol,
            "rooms": self.rooms,
            "peers": self.peers,
            "mode": self.mode,
            "payload_bytes": self.payload_bytes,
            "measured_s": round(self.measured_s, 3),
            "sent": self.sent,
            "delivered": self.delivered,
            "delivered_per_s": round(self.delivered_per_s, 1),
            "latency_ms": {k: round(v, 3) for k, v in self.latency_ms.items()},
            "latency_samples": self.latency_samples,
            "exactly_once": self.verdict.exactly_once,
            "expected_total": self.verdict.expected,
            "delivered_total": self.verdict.delivered,
            "missing": self.verdict.missing,
            "duplicated_or_reordered": self.verdict.duplicated_or_reordered,
            "rejected": self.verdict.rejected,
            "errors": dict(self.errors),
            "server_cpu_s": self.server_cpu_s,
            "delivered_per_server_cpu_s": self.per_server_cpu_s,
            "loadgen_cpu_s": round(self.loadgen_cpu_s, 3),
            "connections": self.connections,
            "idle": self.idle,
            "held": self.held,
            "ok": self.ok,
        }

    def render(self) -> str:
        lat = self.latency_ms
        v = self.verdict
        lines = [
            f"target      {self.url} (protocol v{self.protocol})",
            f"load        {self.rooms} rooms x {self.peers} peers, {self.mode}, "
            f"payload ~{self.payload_bytes} B",
            f"measured    {self.measured_s:.2f} s: {self.delivered:,} deliveries, "
            f"{self.delivered_per_s:,.0f} msgs/s delivered ({self.sent:,} signals sent)",
            f"latency ms  p50 {lat['p50']:.2f}  p90 {lat['p90']:.2f}  p99 {lat['p99']:.2f}  "
            f"p99.9 {lat['p99.9']:.2f}  max {lat['max']:.2f}  ({self.latency_samples:,} samples)",
        ]
        if self.server_cpu_s is not None:
            per = self.per_server_cpu_s
            lines.append(
                f"server CPU  {self.server_cpu_s:.2f} s: "
                + (f"{per:,.0f} msgs per server CPU-second" if per else "n/a")
            )
        busy = self.loadgen_cpu_s / self.measured_s if self.measured_s else 0.0
        lines.append(
            f"load tool   {busy:.2f} cores busy"
            + ("  (near 1: the tool may be the bottleneck)" if busy > 0.9 else "")
        )
        lines.append(
            f"connections {self.held:,} of {self.connections:,} still open at the end "
            f"({self.idle:,} idle)"
        )
        verdict = "yes" if v.exactly_once else "NO"
        lines.append(
            f"exactly once {verdict}: {v.delivered:,} of {v.expected:,} expected deliveries, "
            f"{v.missing:,} missing, {v.duplicated_or_reordered:,} duplicated or out of order, "
            f"{v.rejected:,} signals refused (overloaded or rate_limited)"
        )
        if self.errors:
            lines.append(
                "errors      " + ", ".join(f"{k} x{n}" for k, n in self.errors.most_common())
            )
        return "\n".join(lines)


def latency_summary(samples_us: array[int]) -> dict[str, float]:
    ordered = sorted(samples_us)
    return {
        name: percentile(ordered, q) / 1000.0
        for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100))
    }
