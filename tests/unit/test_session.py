"""The sans-I/O session: state table, admission decisions and timers, no sockets.

Time is injected: ``now`` is a number the test advances, ``wall`` a Unix time for tokens.
Requests and routing are in ``test_session_requests.py``.
"""

from __future__ import annotations

import pytest

from signaling.config import Settings
from signaling.transport import limits
from signaling.transport.admission import Admission
from signaling.transport.auth import Authenticator
from signaling.transport.effects import PING, Abort, Close, Refuse
from signaling.transport.limits import ConnectionLimits
from signaling.transport.server import Hub
from signaling.transport.session import Phase, Session, SessionError
from tests.support.inproc import MemoryClient
from tests.support.keys import SECRET, hs_token
from tests.support.sessions import WALL, Directory, admission, opened, room


def fresh(adm: Admission, peer: str, now: float) -> Session:
    return Session(adm, peer, now, Directory())


def test_state_table_allows_only_listed_transitions() -> None:
    adm = admission()
    s = opened(adm)
    r = room("1234")
    phases = [s.phase]
    s.entered(r, s.peer_id, 1.0, WALL)
    phases.append(s.phase)
    s.evicted(r, 2.0)
    phases.append(s.phase)
    assert phases == [Phase.OPEN, Phase.IN_ROOM, Phase.OPEN]
    s.closing(2.5)
    with pytest.raises(SessionError):
        s.opened(3.0)
    s.closed(3.0)
    assert s.phase is Phase.CLOSED
    s.closed(4.0)  # idempotent
    assert adm.websockets == 0
    with pytest.raises(SessionError):
        s.handshake("127.0.0.2", "/", [], [], 5.0, WALL)


def test_message_rate_refuses_with_retry_after_then_closes_a_flood() -> None:
    adm = admission(message_rate="10/s", rate_limit_strikes=5)
    s = opened(adm)
    assert all(s.message(100, 0.0) is None for _ in range(10))
    refused = s.message(100, 0.0)
    assert refused == Refuse("rate_limited", "Rate limit exceeded", 100)
    assert adm.metrics.rate_limited["messages"] == 1
    results = [s.message(100, 0.0) for _ in range(5)]
    assert [r.close for r in results if r] == [False, False, False, False, True]
    assert adm.metrics.rejected["abuse"] == 1
    assert s.message(100, 1.0) is None  # a second later the bucket has refilled


def test_byte_rate() -> None:
    adm = admission(byte_rate="1000/s")
    s = opened(adm)
    assert s.message(600, 0.0) is None
    refused = s.message(600, 0.0)
    assert refused is not None and refused.retry_after_ms == 200
    assert adm.metrics.rate_limited["bytes"] == 1


def test_handshake_rate_and_connections_per_address() -> None:
    adm = admission(handshake_rate="2/s", connections_per_address=3)
    a = [fresh(adm, "127.0.0.2", 0.0) for _ in range(3)]
    assert a[0].handshake("127.0.0.2", "/", [], [], 0.0, WALL) is None
    assert a[1].handshake("127.0.0.2", "/", [], [], 0.0, WALL) is None
    reject = a[2].handshake("127.0.0.2", "/", [], [], 0.0, WALL)
    assert reject is not None and (reject.status, reject.reason) == (429, "handshake_rate")
    # Another address is served meanwhile.
    assert fresh(adm, "127.0.0.3", 0.0).handshake("127.0.0.3", "/", [], [], 0.0, WALL) is None
    assert a[2].handshake("127.0.0.2", "/", [], [], 1.0, WALL) is None
    fourth = fresh(adm, "127.0.0.2", 2.0)
    reject = fourth.handshake("127.0.0.2", "/", [], [], 2.0, WALL)
    assert reject is not None and reject.reason == "address_connections"
    a[0].closed(3.0)  # a handshake that never opened still frees its slot
    assert fresh(adm, "127.0.0.2", 3.0).handshake("127.0.0.2", "/", [], [], 3.0, WALL) is None
    assert adm.metrics.rejected["handshake_rate"] == 1
    assert adm.metrics.rejected["address_connections"] == 1


def test_server_wide_cap() -> None:
    adm = admission(max_connections=2)
    opened(adm, "127.0.0.2")
    opened(adm, "127.0.0.3")
    reject = fresh(adm, "127.0.0.4", 0.0).handshake("127.0.0.4", "/", [], [], 0.0, WALL)
    assert reject is not None and (reject.status, reject.reason) == (503, "server_full")


def test_trusted_proxy_address_is_the_key() -> None:
    adm = admission(trusted_proxies="10.0.0.0/8", connections_per_address=1)
    opened(adm, "10.0.0.1", headers=[("X-Forwarded-For", "198.51.100.7")])
    s = fresh(adm, "10.0.0.1", 0.0)
    reject = s.handshake("10.0.0.1", "/", [("X-Forwarded-For", "198.51.100.7")], [], 0.0, WALL)
    assert reject is not None and reject.reason == "address_connections"
    other = opened(adm, "10.0.0.1", headers=[("X-Forwarded-For", "198.51.100.8")])
    assert other.address == "198.51.100.8"


def test_origin_allow_list() -> None:
    adm = admission(allowed_origins="https://app.example")
    s = fresh(adm, "127.0.0.2", 0.0)
    reject = s.handshake("127.0.0.2", "/", [("Origin", "https://evil.example")], [], 0.0, WALL)
    assert reject is not None and reject.status == 403
    ok = fresh(adm, "127.0.0.2", 0.0)
    assert ok.handshake("127.0.0.2", "/", [("Origin", "https://APP.example/")], [], 0, WALL) is None


def test_create_rate_and_rooms_held() -> None:
    adm = admission(create_rate="3/min", rooms_per_address=2)
    s = opened(adm)
    assert s.may_create(0.0) is None
    s.created("1001", 0.0)
    assert s.may_create(0.0) is None
    s.created("1002", 0.0)
    refused = s.may_create(0.0)
    assert refused is not None and refused.code == "rate_limited"
    assert adm.metrics.rate_limited["rooms"] == 1
    adm.room_retired("1001", 1.0)
    assert s.may_create(1.0) is None
    s.create_failed(1.0)  # rooms_exhausted: the slot comes back
    refused = s.may_create(1.0)  # the creation rate: 3 per minute
    assert refused is not None and adm.metrics.rate_limited["creates"] == 1
    assert s.may_create(21.0) is None


def test_failed_join_guard_refuses_before_the_lookup() -> None:
    adm = admission(failed_join_rate="3/min")
    s = opened(adm)
    for _ in range(3):
        assert s.may_join("1234", 0.0) is None
        s.failed("room_not_found", 0.0)
    refused = s.may_join("1234", 0.0)
    assert refused is not None and refused.retry_after_ms == 20_000
    assert adm.metrics.rate_limited["failed_joins"] == 1
    # Another address still joins; resumes have their own budget.
    assert opened(adm, "127.0.0.3").may_join("1234", 0.0) is None
    assert s.may_resume("1234", 0.0) is None


def test_failed_resumes_are_limited() -> None:
    adm = admission(failed_resume_rate="2/min")
    s = opened(adm)
    for _ in range(2):
        assert s.may_resume("1234", 0.0) is None
        s.failed("resume_failed", 0.0)
    assert s.may_resume("1234", 0.0) is not None
    assert adm.metrics.rate_limited["failed_resumes"] == 1


def test_roomless_timeout() -> None:
    adm = admission(roomless_timeout=60.0)
    s = opened(adm, now=0.0)
    assert s.due(59.0, 59.0) is None
    r = room("1234")
    s.entered(r, s.peer_id, 59.0, WALL)
    assert s.due(500.0, 500.0) is None  # in a room: no timeout
    s.evicted(r, 500.0)
    assert s.due(559.0, 559.0) is None
    close = s.due(560.0, 560.0)
    assert isinstance(close, Close) and close.code == 1008
    assert adm.metrics.rejected["roomless_timeout"] == 1


def test_token_required_and_its_grant_applies() -> None:
    adm = admission(Authenticator(secret=SECRET))
    s = fresh(adm, "127.0.0.2", 0.0)
    reject = s.handshake("127.0.0.2", "/", [], [], 0.0, WALL)
    assert reject is not None and (reject.status, reject.reason) == (401, "unauthorized")
    bad = fresh(adm, "127.0.0.2", 0.0)
    reject = bad.handshake("127.0.0.2", "/?token=garbage", [], [], 0.0, WALL)
    assert reject is not None and "garbage" not in reject.body

    token = hs_token({"exp": WALL + 30, "room": "4821"})
    s = fresh(adm, "127.0.0.2", 100.0)
    assert s.handshake("127.0.0.2", "/", [], ["bearer." + token], 100.0, WALL) is None
    s.opened(100.0)
    assert s.may_join("4821", 100.0) is None
    refused = s.may_join("1111", 100.0)
    assert refused is not None and refused.code == "unauthorized"
    refused = s.may_create(100.0)
    assert refused is not None and refused.code == "unauthorized"
    s.entered(room("4821"), s.peer_id, 100.0, WALL)
    # Expiry is enforced during the connection, on the loop clock.
    assert s.expires_at == 130.0
    assert s.due(129.9, 129.9) is None
    close = s.due(130.0, 130.0)
    assert isinstance(close, Close) and close.code == 1008 and close.error is not None
    assert close.error.code == "unauthorized"
    assert adm.metrics.rejected["token_expired"] == 1


def test_expired_token_is_refused_at_the_handshake() -> None:
    adm = admission(Authenticator(secret=SECRET))
    token = hs_token({"exp": WALL - 1})
    s = fresh(adm, "127.0.0.2", 0.0)
    reject = s.handshake("127.0.0.2", "/", [("Authorization", f"Bearer {token}")], [], 0, WALL)
    assert reject is not None and reject.status == 401 and "expired" in reject.body


def test_keepalive_pings_once_per_silence_then_aborts() -> None:
    adm = admission(ping_interval=20.0, ping_timeout=10.0, roomless_timeout=1e6)
    s = opened(adm, now=0.0)
    assert s.due(19.0, 0.0) is None
    assert s.due(21.0, 0.0) is PING
    assert s.due(25.0, 0.0) is None  # pinged already; waiting for an answer
    assert s.due(29.0, 28.0) is None  # it answered
    assert s.due(49.0, 28.0) is PING  # silent again: a new ping
    due = s.due(59.0, 28.0)
    assert isinstance(due, Abort) and due.reason == "no pong"


def test_handshake_and_close_timeouts() -> None:
    adm = admission(handshake_timeout=10.0, close_timeout=5.0)
    slow = fresh(adm, "127.0.0.2", 0.0)
    assert slow.due(10.0, 0.0) is None
    due = slow.due(10.5, 0.0)
    assert isinstance(due, Abort) and due.reason == "handshake timeout"
    s = opened(adm, now=0.0)
    s.closing(100.0)
    assert s.due(104.0, 0.0) is None  # closing: no pings, no policy closes
    due = s.due(105.5, 0.0)
    assert isinstance(due, Abort) and due.reason == "close timeout"


# ---- one admission per message ---------------------------------------------------------------


def count_admissions(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every ``ConnectionLimits.admit`` call from now on, by size (the pure package only:
    mypyc binds the call at build time)."""
    if not str(limits.__file__).endswith(".py"):
        pytest.skip("ConnectionLimits is compiled: admit cannot be counted")
    calls: list[int] = []
    real = ConnectionLimits.admit

    def admit(self: ConnectionLimits, now: float, size: int) -> float:
        calls.append(size)
        return real(self, now, size)

    monkeypatch.setattr(ConnectionLimits, "admit", admit)
    return calls


def test_the_session_admits_each_message_once(monkeypatch: pytest.MonkeyPatch) -> None:
    adm = admission(message_rate="10/min", rate_limit_strikes=2)
    s = opened(adm)
    calls = count_admissions(monkeypatch)
    results = [s.message(100 + n, 0.0) for n in range(14)]
    assert calls == [100 + n for n in range(14)]
    assert results[:10] == [None] * 10
    assert [(r.code, r.retry_after_ms, r.close) for r in results[10:] if r] == [
        ("rate_limited", 6000, False),
        ("rate_limited", 6000, False),
        ("rate_limited", 6000, True),  # out of strikes: 1008
        ("rate_limited", 6000, True),
    ]
    assert adm.metrics.rate_limited["messages"] == 4


async def test_a_refused_message_is_admitted_once_on_its_way_in(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection hands every message to ``Session.message`` and nothing else: a
    refused text, binary or ping frame is judged by the buckets once (real Connection and
    Hub, in-memory transport: no socket)."""
    hub = Hub(Settings(port=0, metrics_port=0, message_rate="10/min"))
    hub.ready = True
    try:
        client = MemoryClient(hub, v2=True)
        calls = count_admissions(monkeypatch)
        for n in range(12):
            client.send({"type": "signal", "payload": n})
        client.conn.data_received(b"\x82\x82\0\0\0\0hi")  # a binary frame, unmasked "hi"
        client.conn.data_received(b"\x89\x82\0\0\0\0hi")  # a ping
        assert len(calls) == 14, calls
        assert calls[-2:] == [2, 3]  # a control frame counts one byte more
        client.conn.flush()  # what the hub does at the end of this event-loop turn
        errors = [m for m in client.messages() if m["type"] == "error"]
        assert [m["code"] for m in errors] == ["not_in_room"] * 10 + ["rate_limited"] * 4
        assert all(5000 < m["retryAfterMs"] <= 6000 for m in errors[10:])
        assert hub.metrics.rate_limited["messages"] == 4
        assert not client.closed
    finally:
        await hub.supervisor.close()
