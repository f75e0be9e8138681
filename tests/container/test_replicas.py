"""The scaled-out deployment as containers: two replicas of the image sharing one Redis
container (``SIGNALING_JOURNAL=redis``) on a user-defined network, clients on the host.

What tests/integration/test_replicas.py proves with processes, here through the image as
operators run it: the replicas reach Redis by its container name, a room created on one
is joined by id on the other and signals cross both ways exactly once and in order, a v2
peer resumes through the other replica; a Redis outage turns both replicas not ready
(503) and their clients get ``unavailable`` and close code 4002; Redis back (empty, no
persistence), both are ready again without a restart and new rooms span them again.

No registry can be pulled from: Redis runs in ``signaling-redis:bookworm``, Debian's
``redis-server`` package in an image built like the base image (``redis_image``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from tests.container.conftest import (
    METRICS_PORT,
    WS_PORT,
    MakePeer,
    Running,
    wait_ready,
)
from tests.support.client import Client, signals_from
from tests.support.http import ahttp_get, http_get, metric_value
from tests.support.waiting import GUARD_S, wait_until

if TYPE_CHECKING:
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

# The first test may build the images (session fixtures), which pytest-timeout counts.
pytestmark = [pytest.mark.container, pytest.mark.slow, pytest.mark.timeout(600)]

REDIS_ALIAS = "redis"
# A failure guard only: a room is lost after its reloads fail (backoff up to 2 s each,
# each connect up to 2 s), then readiness follows; far above that on a loaded box.
OUTAGE_GUARD_S = 60.0


@dataclass
class Deployment:
    network: Network
    redis: DockerContainer
    a: Running
    b: Running

    def redis_answers(self) -> bool:
        code, out = self.redis.get_wrapped_container().exec_run(["redis-cli", "ping"])
        return bool(code == 0 and out.strip() == b"PONG")

    def start_redis(self) -> None:
        self.redis.get_wrapped_container().start()
        wait_until(self.redis_answers, what="redis PONG", timeout=30)

    def stop_redis(self) -> None:
        wrapped = self.redis.get_wrapped_container()
        wrapped.stop(timeout=10)
        wrapped.reload()
        assert wrapped.status == "exited", wrapped.status


def run_replica(image: str, network: Network, name: str) -> DockerContainer:
    from testcontainers.core.container import DockerContainer

    container = (
        DockerContainer(image)
        .with_network(network)
        .with_exposed_ports(WS_PORT, METRICS_PORT)
        .with_env("SIGNALING_LOG_FORMAT", "text")
        .with_env("SIGNALING_JOURNAL", "redis")
        .with_env("SIGNALING_REDIS_URL", f"redis://{REDIS_ALIAS}:6379/0")
        .with_env("SIGNALING_MAX_PEERS_PER_ROOM", "2")
        .with_name(name)
    )
    return container


@pytest.fixture(scope="module")
def deployment(image: str, redis_image: str) -> Iterator[Deployment]:
    """Redis, then replicas A and B, on one network; all removed, then the network."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network

    suffix = uuid.uuid4().hex[:8]
    network = Network()
    network.create()
    started: list[DockerContainer] = []
    try:
        redis = (
            DockerContainer(redis_image)
            .with_network(network)
            .with_network_aliases(REDIS_ALIAS)
            .with_name(f"signaling-test-redis-{suffix}")
            # No persistence: a restarted Redis has lost everything (the journal's epochs).
            .with_command(
                "redis-server --bind 0.0.0.0 --protected-mode no --save '' --appendonly no"
            )
        )
        started.append(redis)
        redis.start()
        replicas: list[Running] = []
        for label in ("a", "b"):
            container = run_replica(image, network, f"signaling-test-replica-{label}-{suffix}")
            started.append(container)
            container.start()
            replicas.append(
                Running(
                    container=container,
                    host=container.get_container_host_ip(),
                    port=int(container.get_exposed_port(WS_PORT)),
                    metrics_port=int(container.get_exposed_port(METRICS_PORT)),
                )
            )
        found = Deployment(network, redis, replicas[0], replicas[1])
        wait_until(found.redis_answers, what="redis PONG", timeout=30)
        for running in replicas:
            wait_ready(running)
        yield found
    finally:
        for container in reversed(started):
            try:
                container.stop()
            except Exception as exc:  # already gone; keep cleaning the rest
                print(f"cleanup of a test container failed: {exc}")
        network.remove()


async def readiness(running: Running) -> int:
    return (await ahttp_get(f"{running.http}/readyz", timeout=2.0))[0]


async def readiness_becomes(running: Running, status: int, guard: float = OUTAGE_GUARD_S) -> None:
    """Poll /readyz (another process: no notification exists) until it answers
    ``status``; the deadline is a failure guard only."""
    seen: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + guard
    while loop.time() < deadline:
        try:
            seen.append(await readiness(running))
        except OSError as exc:
            seen.append(-1)
            print(f"/readyz: {exc!r}")
        if seen[-1] == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"/readyz never answered {status}: {seen[-5:]}; logs:\n{running.logs()}")


async def cross_replica_pair(
    deployment: Deployment, peers: MakePeer, *, v2: bool = False, first: str = "a"
) -> tuple[Client, Client, str]:
    """A creates a room on one replica, B joins it by id through the other."""
    one, other = (deployment.a, deployment.b) if first == "a" else (deployment.b, deployment.a)
    x, y = await peers(one, v2=v2), await peers(other, v2=v2)
    room = (await x.create())["roomId"]
    joined = await y.join(room)
    assert joined["roomId"] == room and joined["myId"] != x.my_id, joined
    return x, y, room


async def test_a_room_spans_two_replica_containers_exactly_once_and_in_order(
    deployment: Deployment, peers: MakePeer
) -> None:
    for running in (deployment.a, deployment.b):
        assert await readiness(running) == 200
    # The seed's protocol (v1): what existing clients speak.
    a, b, _ = await cross_replica_pair(deployment, peers)
    n = 60

    async def send(client: Client, tag: str) -> None:
        for i in range(n):
            await client.send({"type": "signal", "payload": {tag: i}})

    got_b, got_a, _, _ = await asyncio.gather(
        signals_from(b, a.my_id or "", n),
        signals_from(a, b.my_id or "", n),
        send(a, "a"),
        send(b, "b"),
    )
    assert got_b == [{"a": i} for i in range(n)], "A's signals reach B once, in order"
    assert got_a == [{"b": i} for i in range(n)], "B's signals reach A once, in order"
    # Exactly once: after a barrier behind everything sent, nothing more arrived.
    await a.send({"type": "signal", "payload": "barrier-a"})
    await b.send({"type": "signal", "payload": "barrier-b"})
    assert await signals_from(b, a.my_id or "", 1) == ["barrier-a"]
    assert await signals_from(a, b.my_id or "", 1) == ["barrier-b"]
    assert sum('"signal"' in m for m in b.received) == n + 1
    assert sum('"signal"' in m for m in a.received) == n + 1
    for running in (deployment.a, deployment.b):  # the relay went through the journal
        text = (await asyncio.to_thread(http_get, running.metrics_url))[1]
        # Each replica folded in the other's signals (the metric is exported at 0 too).
        followed = metric_value(text, "signaling_journal_followed_events_total")
        assert followed is not None and followed >= n + 1, followed

    # v2: a peer on B drops and resumes through A; what it missed is replayed.
    x, y, room = await cross_replica_pair(deployment, peers, v2=True)
    await x.recv_type("peer_joined")
    await x.send({"type": "signal", "payload": "before"})
    assert await signals_from(y, x.my_id or "", 1) == ["before"]
    seq, token, peer = y.seq, y.token, y.my_id
    await y.ws.close()  # v2: detached, resumable
    await x.send({"type": "signal", "payload": "missed 1"})
    await x.send({"type": "signal", "payload": "missed 2"})
    y2 = await peers(deployment.a, v2=True)
    await y2.send(
        {"type": "resume", "roomId": room, "peerId": peer, "resumeToken": token, "lastSeq": seq}
    )
    assert (await y2.recv_type("resumed"))["myId"] == peer
    assert await signals_from(y2, x.my_id or "", 2) == ["missed 1", "missed 2"]
    await y2.send({"type": "signal", "payload": "back"})
    assert await signals_from(x, peer or "", 1) == ["back"]


async def test_a_redis_outage_is_unavailable_and_not_ready_on_both_then_recovers(
    deployment: Deployment, peers: MakePeer
) -> None:
    a, b, _ = await cross_replica_pair(deployment, peers)
    await a.send({"type": "signal", "payload": "up"})
    assert await signals_from(b, a.my_id or "", 1) == ["up"]

    await asyncio.to_thread(deployment.stop_redis)
    # Each replica learns of the outage when it next needs the journal: a signal sent
    # through each is answered `unavailable` (nothing relayed), then the room, which
    # cannot be reloaded, is lost for its members there: close code 4002.
    await a.send({"type": "signal", "payload": "lost a"})
    await b.send({"type": "signal", "payload": "lost b"})
    for client in (a, b):
        error = await client.recv_type("error", timeout=OUTAGE_GUARD_S)
        assert error["code"] == "unavailable", error
        assert (await client.closed(timeout=OUTAGE_GUARD_S))[0] == 4002
    assert "lost a" not in "".join(b.received), "nothing unjournaled was relayed"
    assert "lost b" not in "".join(a.received), "nothing unjournaled was relayed"
    for running in (deployment.a, deployment.b):
        await readiness_becomes(running, 503)
        logs = running.logs()
        assert "Traceback" not in logs, logs

    await asyncio.to_thread(deployment.start_redis)
    for running in (deployment.a, deployment.b):
        await readiness_becomes(running, 200)  # by the replica's own probe: no traffic
    # New rooms span the replicas again, this time created on B.
    c, d, _ = await cross_replica_pair(deployment, peers, first="b")
    await c.send({"type": "signal", "payload": "again"})
    assert await signals_from(d, c.my_id or "", 1) == ["again"]
    await d.send({"type": "signal", "payload": "and back"})
    assert await signals_from(c, d.my_id or "", 1) == ["and back"]


async def test_a_replica_that_saw_redis_go_is_not_ready_without_traffic(
    deployment: Deployment, peers: MakePeer
) -> None:
    await cross_replica_pair(deployment, peers)  # both replicas follow a room
    marker = "journal follower failing"
    before = [running.logs().count(marker) for running in (deployment.a, deployment.b)]
    await asyncio.to_thread(deployment.stop_redis)
    try:
        for running, seen in zip((deployment.a, deployment.b), before, strict=True):
            # The replica itself has observed the outage: its follower logged it.
            await asyncio.to_thread(
                wait_until,
                lambda r=running, n=seen: r.logs().count(marker) > n,
                what="the follower's failure logged",
                timeout=OUTAGE_GUARD_S,
            )
            await readiness_becomes(running, 503, guard=GUARD_S)
    finally:
        await asyncio.to_thread(deployment.start_redis)
        for running in (deployment.a, deployment.b):
            await readiness_becomes(running, 200)
