"""The metrics the alert rules (prometheus/alerts.yaml) cannot do without, read in the
Prometheus text format from a real in-process server's registry (what its admin port
serves) while the condition they report is created."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from signaling.config import Settings
from signaling.transport.server import Server
from tests.support.inproc import MemoryClient
from tests.support.journals import FaultyJournal, refuse_creates
from tests.support.waiting import eventually


def _scrape(server: Server) -> dict[str, float]:
    body = generate_latest(server.hub.metrics.registry()).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if not sample.labels
    }


async def test_ready_and_journal_failures_follow_a_failing_journal() -> None:
    """signaling_ready mirrors /readyz (1, then 0 while the journal keeps failing, then 1
    again); signaling_journal_failures_total counts every failure."""
    journal = FaultyJournal()
    server = Server(Settings(port=0, host="127.0.0.1", metrics_port=0), journal=journal)
    await server.start()
    hub = server.hub
    hub.supervisor.backoff = (0.01, 0.05)
    clients: list[MemoryClient] = []
    try:
        before = _scrape(server)
        assert before["signaling_ready"] == 1
        assert before["signaling_journal_failures_total"] == 0
        clients += await refuse_creates(hub, journal, 3)
        failing = _scrape(server)
        assert failing["signaling_ready"] == 0
        assert failing["signaling_journal_failures_total"] >= 3
        journal.down = False
        await eventually(lambda: hub.supervisor.journal_healthy, what="journal healthy")
        after = _scrape(server)
        assert after["signaling_ready"] == 1
        assert (
            after["signaling_journal_failures_total"] >= failing["signaling_journal_failures_total"]
        )
    finally:
        for client in clients:
            client.drop()
        await server.shutdown()


async def test_connections_limit_is_the_configured_cap() -> None:
    server = Server(
        Settings(port=0, host="127.0.0.1", metrics_port=0, max_connections=1234),
        journal=FaultyJournal(),
    )
    await server.start()
    try:
        assert (_scrape(server))["signaling_connections_limit"] == 1234
    finally:
        await server.shutdown()
