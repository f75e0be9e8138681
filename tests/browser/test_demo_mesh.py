"""Three Chromium pages in one room through the demo page: a full mesh, chat over
DataChannels, and a resume after the signaling socket of one page is cut (not the page)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.demo import wait_full_mesh
from tests.support.http import http_get
from tests.support.server import ServerProcess, spawn_server
from tests.support.tcpproxy import TcpProxy, tcp_proxy

pytestmark = pytest.mark.slow

# Application notes (not mesh signals) received over signaling, in delivery order.
RECORD_NOTES = """() => {
  window.notes = [];
  demo.client.on("signal", ({ from, payload }) => {
    if (payload && payload.note !== undefined) notes.push([from, payload.note]);
  });
  window.resumes = 0;
  demo.client.on("resumed", () => { resumes += 1; });
}"""


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with spawn_server() as running:
        yield running


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[TcpProxy]:
    with tcp_proxy(server.port) as running:
        yield running


def say(page: Any, text: str) -> None:
    page.fill("#message", text)
    page.press("#message", "Enter")


def chat_texts(page: Any) -> list[str]:
    texts: list[str] = page.evaluate("demo.chat.map((m) => m.text)")
    return texts


def test_three_pages_mesh_chat_and_resume(
    server: ServerProcess, proxy: TcpProxy, new_page: Any, artifacts: Path
) -> None:
    a, b, c = new_page(), new_page(), new_page()
    a.goto(server.http + "/")
    a.click("#create")
    a.wait_for_function("() => demo.client.roomId !== null")
    room = a.evaluate("demo.client.roomId")
    assert a.inner_text("#room-code") == room
    b.goto(f"{server.http}/?room={room}")
    # Page C reaches the server through a proxy the test can cut.
    c.goto(f"http://127.0.0.1:{proxy.port}/?room={room}")
    wait_full_mesh((a, b, c), 2)
    for page in (a, b, c):
        page.evaluate(RECORD_NOTES)
    ids = {name: p.evaluate("demo.client.myId") for name, p in zip("abc", (a, b, c), strict=True)}
    assert len(set(ids.values())) == 3
    assert a.inner_text("#count") == "3"

    # Chat over the DataChannels: everyone hears everyone else, once.
    for name, page in zip("abc", (a, b, c), strict=True):
        say(page, f"hello from {name}")
    for name, page in zip("abc", (a, b, c), strict=True):
        others = sorted(f"hello from {n}" for n in "abc" if n != name)
        page.wait_for_function("(n) => demo.chat.length >= n", arg=2)
        assert sorted(chat_texts(page)) == others
    a.screenshot(path=str(artifacts / "demo-page.png"), full_page=True)

    before = {
        name: p.evaluate("demo.mesh.negotiations") for name, p in zip("abc", (a, b, c), strict=True)
    }
    for page in (a, b, c):
        page.evaluate(
            "window.pcsBefore = new Map([...demo.mesh.peers].map(([id, p]) => [id, p.pc]))"
        )

    # Cut C's signaling socket and keep it offline while A and B signal to it, and C to them.
    accepted = proxy.accepted
    proxy.hold()
    proxy.cut()
    c.wait_for_function("() => demo.client.state === 'reconnecting'")
    for n in range(1, 6):
        a.evaluate("([to, n]) => demo.client.signal({ note: n }, { to })", [ids["c"], n])
        b.evaluate("(n) => demo.client.signal({ note: 100 + n })", n)  # broadcast
        c.evaluate("([to, n]) => demo.client.signal({ note: 200 + n }, { to })", [ids["a"], n])
    # C's reconnection attempt has reached the proxy: it is offline, not idle.
    c.wait_for_function("() => demo.client.state === 'reconnecting'")
    proxy.release()
    c.wait_for_function("() => window.resumes === 1 && demo.client.state === 'open'")
    assert proxy.accepted > accepted
    for n in range(6, 9):
        a.evaluate("([to, n]) => demo.client.signal({ note: n }, { to })", [ids["c"], n])

    c.wait_for_function("() => notes.filter(([, n]) => n < 100).length >= 8")
    c.wait_for_function("() => notes.filter(([, n]) => n > 100).length >= 5")
    notes_c = c.evaluate("notes")
    assert [n for sender, n in notes_c if sender == ids["a"]] == list(range(1, 9))
    assert [n for sender, n in notes_c if sender == ids["b"]] == [101, 102, 103, 104, 105]
    a.wait_for_function("() => notes.filter(([, n]) => n > 200).length >= 5")
    assert a.evaluate("notes") == [[ids["b"], 100 + n] for n in range(1, 6)] + [
        [ids["c"], 200 + n] for n in range(1, 6)
    ]
    assert b.evaluate("notes") == []  # A's notes went to C only, C's to A only

    # Nothing was renegotiated: same connections, still connected, no new offers.
    for name, page in zip("abc", (a, b, c), strict=True):
        assert page.evaluate("demo.mesh.negotiations") == before[name], name
        assert page.evaluate(
            "() => [...demo.mesh.peers].every(([id, p]) => pcsBefore.get(id) === p.pc)"
        )
    wait_full_mesh((a, b, c), 2)
    say(c, "still here")
    for page in (a, b):
        page.wait_for_function("() => demo.chat.some((m) => m.text === 'still here')")
        assert chat_texts(page).count("still here") == 1
    for page in (a, b, c):
        assert page.page_errors == [], page.page_errors
        assert page.evaluate("demo.errors") == []
        assert page.evaluate("demo.client.state") == "open"
    assert json.loads(json.dumps(notes_c))  # plain JSON all along


def test_demo_page_off_serves_nothing() -> None:
    with spawn_server({"SIGNALING_DEMO_PAGE": "false"}, metrics=False) as running:
        for path in ("/", "/client/signaling.js", "/demo.js"):
            status, _ = http_get(running.http + path)
            assert status == 426, path


def test_resume_failed_then_rejoin_rebuilds_the_mesh(new_page: Any) -> None:
    """Offline past the grace period: the resume is refused, the page says so
    (``resume_failed``), joins the room afresh with a new id, and the mesh is rebuilt."""
    with (
        spawn_server({"SIGNALING_RESUME_GRACE_MS": "300"}, metrics=False) as server,
        tcp_proxy(server.port) as proxy,
    ):
        a, c = new_page(), new_page()
        a.goto(server.http + "/")
        a.click("#create")
        a.wait_for_function("() => demo.client.roomId !== null")
        room = a.evaluate("demo.client.roomId")
        c.goto(f"http://127.0.0.1:{proxy.port}/?room={room}")
        wait_full_mesh((a, c), 1)
        old_id = c.evaluate("demo.client.myId")
        a.evaluate("""() => { window.left = [];
          demo.client.on("peer_left", (e) => left.push([e.peerId, e.reason])); }""")
        c.evaluate("""() => { window.seen = [];
          for (const t of ["resume_failed", "rejoined", "resumed"])
            demo.client.on(t, () => seen.push(t)); }""")

        proxy.hold()
        proxy.cut()
        # The grace period runs out while C is offline: A hears that C is gone.
        a.wait_for_function("() => left.length === 1")
        assert a.evaluate("left") == [[old_id, "disconnected"]]
        proxy.release()

        c.wait_for_function("() => seen.includes('rejoined')")
        assert c.evaluate("seen") == ["resume_failed", "rejoined"]
        new_id = c.evaluate("demo.client.myId")
        assert new_id != old_id and c.evaluate("demo.client.roomId") == room
        wait_full_mesh((a, c), 1)
        assert a.evaluate("[...demo.mesh.peers.keys()]") == [new_id]
        c.fill("#message", "back again")
        c.press("#message", "Enter")
        a.wait_for_function("() => demo.chat.some((m) => m.text === 'back again')")
        assert c.inner_text("#log").count("could not resume") == 1


def test_camera_renegotiates_and_the_other_page_gets_video(
    server: ServerProcess, new_page: Any
) -> None:
    """Turning the camera on (Chromium's fake device) adds tracks to a connected pair:
    perfect negotiation renegotiates and the other page shows the remote video."""
    a, b = new_page(), new_page()
    a.goto(server.http + "/")
    a.click("#create")
    a.wait_for_function("() => demo.client.roomId !== null")
    b.goto(f"{server.http}/?room={a.evaluate('demo.client.roomId')}")
    wait_full_mesh((a, b), 1)
    offers = a.evaluate("demo.mesh.negotiations") + b.evaluate("demo.mesh.negotiations")
    a.check("#camera")
    b.wait_for_function(
        """() => [...document.querySelectorAll("#videos video")].some((v) =>
             v.srcObject && v.srcObject.getVideoTracks().length === 1 && v.readyState >= 2)"""
    )
    after = a.evaluate("demo.mesh.negotiations") + b.evaluate("demo.mesh.negotiations")
    assert after > offers  # a renegotiation, not a new connection
    wait_full_mesh((a, b), 1)
    assert a.evaluate("demo.errors") == [] and b.evaluate("demo.errors") == []
