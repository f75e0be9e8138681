"""One client socket: an ``asyncio.Protocol`` driving websockets' sans-I/O ``Protocol``.

Why not the ``websockets.asyncio`` server: it runs a coroutine per connection and a
coroutine per ``send``. Here bytes are parsed in ``data_received`` and a message goes
straight into its room's mailbox, with no task, future or coroutine of its own; frames
for a client are queued in a list and written with one ``writelines`` per event-loop
turn (see ``Hub.mark_dirty``). The websockets library still does the frame-level
protocol work (frame parsing and checks, size limits, ping/pong and close handshakes);
the connection reads HTTP request heads before the upgrade (``http``), answers the
opening handshake itself (``upgrade``), takes whole final text frames itself at the frame
boundaries it tracks (``framing``) and checks UTF-8. What a message means is the
session's to decide (``session``, sans-I/O: protocol state, routing, admission); the
connection feeds it the decoded text and the rooms' verdicts and carries out what it
returns.

Memory per idle connection is what most deployments run out of first, so an open
connection holds no websockets object while nothing needs one: ``_protocol`` creates
websockets' ``Protocol`` (already OPEN) when a frame the fast path does not take arrives
or the server pings or closes, and ``_release`` drops it again once it is back at a frame
boundary with nothing held (its state is then exactly that of a new one). With the
handshake done without websockets' ``Request``, an idle connection keeps about 4 KiB
less (BENCHMARKS.md, "memory per idle connection").

Memory per connection is bounded whatever bytes arrive (README "Errors and limits"):
one incomplete frame, one fragmented message whose frames each count at least
``FRAGMENT_COST`` bytes, and unsent bytes (pongs included) up to the send buffer; a
client that does not read is disconnected alone when they overflow.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, cast

from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State

from signaling.core import commands as c
from signaling.core import turn, wire
from signaling.core.commands import Signal
from signaling.core.errors import ErrorCode
from signaling.rooms.peer import RoomHandle
from signaling.telemetry.logs import FaultAdapter, FaultLog
from signaling.transport import http, upgrade
from signaling.transport.effects import Close, Effects, Ping, Post, Refuse
from signaling.transport.framing import MAX_HEADER, frame_size
from signaling.transport.session import Session

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is absent on exotic platforms
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from signaling.transport.server import Hub

log = logging.getLogger("signaling.transport.connection")
# Everything a client can provoke is logged through this, once per cause per interval.
faults = FaultLog(log)
_ws_log = FaultAdapter(FaultLog(logging.getLogger("websockets.server")))
# Close codes that mean "the client sent something wrong" when the server sends them.
CLIENT_FAULTS = {1002: "protocol error", 1007: "invalid data", 1008: "policy", 1009: "too big"}


class _NoWireTraces(logging.Filter):
    """websockets traces every request line, header and frame at debug level (``< ...``
    and ``> ...``): tokens, cookies and payloads. Those never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (isinstance(msg, str) and msg[:2] in ("< ", "> "))


_ws_log.logger.addFilter(_NoWireTraces())

OPEN, CONNECTING, CLOSING = State.OPEN, State.CONNECTING, State.CLOSING
TEXT, BINARY, CONT, PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
CLOSE = Opcode.CLOSE
SERVER = Side.SERVER
HEALTH_PATHS = ("/healthz", "/readyz")
# Each frame of a fragmented message counts at least this many bytes against
# SIGNALING_MAX_MESSAGE_BYTES, so a message cannot arrive as an endless run of tiny or
# empty frames (websockets counts only payload bytes).
FRAGMENT_COST = 64


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        # The session's protocol, copied for the rooms (read per delivery, see Peer).
        self.protocol: c.Protocol = 1
        self.opened = False
        self.closed = False
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.created = self.last_seen = hub.loop.time()
        self._fragments: bytearray | None = None  # a fragmented message so far
        self._fragment_op: Opcode | None = None
        self._ice_timer: asyncio.TimerHandle | None = None
        self._fragment_charge = 0  # its bytes, each frame counting at least FRAGMENT_COST
        self._skip = 0  # bytes websockets needs to finish its current frame
        self._head = b""  # a frame header websockets holds whose length is not known yet
        self._request: bytearray | None = None  # HTTP before the upgrade, until a blank line
        self._partial: bytearray | None = None  # a fast-path text frame, still incomplete
        self._partial_size = 0
        # websockets' frame protocol, only while it has work (see ``_protocol``); None
        # before the upgrade and while open at a frame boundary.
        self.ws: Protocol | None = None
        self.transport: asyncio.Transport
        # Protocol state, routing and admission (sans-I/O): it decides, this carries the
        # decisions out; every message is admitted once, by ``Session.message``.
        self.session = Session(hub.admission, None, self.created, hub.supervisor)
        self._socket_counted = False
        self._expiry: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        if not self.hub.admission.socket_opened():
            # Far over the connection cap: not even a health probe is answered.
            self.closed = True
            self.transport.abort()
            return
        self._socket_counted = True
        self.hub.connections.add(self)

    def data_received(self, data: bytes) -> None:
        try:
            self.last_seen = self.hub.loop.time()
            state = self._state()
            if state is OPEN:
                pos = 0
                if self._partial is not None:
                    pos = self._complete_partial(data)
                    if pos == len(data) or self.closed or self._state() is not OPEN:
                        self._frames_in(data, pos)  # nothing, or what follows a close
                        self._pump()
                        return
                ws = self.ws
                if ws is None or (not self._skip and not self._head and ws.current_size is None):
                    # At a frame boundary of websockets' parser: the common case, whole text
                    # frames, is handled without it (and without waking it: no _pump).
                    pos = self._take_text_frames(data, pos)
                    if pos == len(data) or self.closed:
                        return
                self._frames_in(data, pos)
            elif state is CONNECTING:
                self._request_in(data)
                return
            else:  # closing: websockets reads the peer's close frame, one frame at a time
                if self._partial is not None:  # a fast-path frame cut by TCP: hand it over
                    partial, self._partial = self._partial, None
                    self._skip = self._partial_size - len(partial)
                    self._feed(bytes(partial))
                self._frames_in(data)
            self._pump()
        except Exception:
            # A bug, not the client's fault, but client bytes reached it: one line per
            # interval (with the traceback), a 1011 close for this client, nobody else hurt.
            faults.fault(
                "internal",
                "internal error on client input; closing with 1011",
                level=logging.ERROR,
                exc_info=True,
                peer=self.peer_id,
            )
            self._internal_error()

    def _internal_error(self) -> None:
        if self.closed:
            return
        if self.opened and self._state() is OPEN:
            self._protocol().fail(1011, "internal error")
            self._pump()
        if not self.closed:
            self.abort()

    # ---- websockets' protocol object, only while it has work -------------------------------

    def _state(self) -> State:
        """websockets' state; CONNECTING until the 101, OPEN while no protocol object is
        needed."""
        ws = self.ws
        if ws is not None:
            return ws.state
        return OPEN if self.opened else CONNECTING

    def _protocol(self) -> Protocol:
        """websockets' frame protocol for an open connection, created on demand in the
        OPEN state: a frame the fast path does not take, a ping, a close or a failure."""
        ws = self.ws
        if ws is None:
            ws = self.ws = Protocol(
                SERVER,
                state=OPEN,
                max_size=self.hub.settings.max_message_bytes,
                logger=_ws_log,
            )
        return ws

    def _release(self) -> None:
        """Drop the protocol object when it holds nothing: open, at a frame boundary (no
        header or payload bytes pending, ``_skip``/``_head``), no fragmented message, no
        bytes buffered, nothing to send. A new one is then in exactly the same state,
        and an idle connection keeps about 1.1 KiB less (its generators, reader, lists,
        uuid)."""
        ws = self.ws
        if (
            ws is not None
            and ws.state is OPEN
            and ws.current_size is None
            and not ws.eof_sent
            and not self._skip
            and not self._head
            and not ws.reader.buffer
            and not ws.writes
            and not ws.events
            and not self.closed
        ):
            self.ws = None

    def _frames_in(self, data: bytes, pos: int = 0) -> None:
        """Frames of an open (or closing) connection: the fast path at frame boundaries
        while open, websockets for everything else, one whole frame at a time (see
        ``framing``), so that one read never becomes thousands of frame objects at once.

        ``_skip`` counts the bytes websockets still needs to finish the frame it is in,
        ``_head`` is the start of a header it holds whose length is not known yet; both
        are zero/empty exactly when its parser waits for the first byte of a frame.
        """
        n = len(data)
        while pos < n:
            state = self._state()
            if state is not OPEN and state is not CLOSING:
                self._feed(data[pos:] if pos else data)
                return
            skip = self._skip
            if skip:
                end = pos + skip if pos + skip < n else n
                self._skip = skip - (end - pos)
                self._feed(data[pos:end] if pos or end < n else data)
                pos = end
                continue
            head = self._head
            if head:
                buf = head + data[pos : pos + MAX_HEADER]
                size = frame_size(buf, 0)
                if size < 0:  # still no length: all of data is in buf (headers are short)
                    self._head = buf
                    self._feed(data[pos:] if pos else data)
                    return
                self._head = b""
                self._skip = size - len(head)
                continue
            ws = self.ws
            if state is OPEN and (ws is None or ws.current_size is None):
                pos = self._take_text_frames(data, pos)
                if pos == n or self.closed:
                    return
                if self._state() is not OPEN:
                    continue
            size = frame_size(data, pos)
            if size < 0:
                self._head = data[pos:]
                self._feed(self._head)
                return
            self._skip = size

    def _complete_partial(self, data: bytes) -> int:
        """Add to the text frame the fast path began; handle it once whole. Returns the
        bytes of ``data`` used."""
        buf = self._partial
        assert buf is not None
        need = self._partial_size - len(buf)
        if len(data) < need:
            buf += data
            return len(data)
        buf += data[:need] if need < len(data) else data
        self._partial = None
        self._take_text_frames(bytes(buf), 0)
        return need

    def _request_in(self, data: bytes) -> None:
        """HTTP before the upgrade (see ``http``): probes are answered here, one request
        after another; an upgrade request is answered by ``_upgrade``, and the bytes
        after it are frames once the connection is open."""
        buf = self._request
        if buf is None:
            buf = self._request = bytearray(data)
        else:
            buf += data
        while not self.closed:
            try:
                head = http.take_head(buf)
            except http.HeadTooLarge:
                self._http_reply(431, b"request head too large\n", None)
                return
            except http.BadRequest:
                self._http_reply(400, b"bad request\n", None)
                return
            if head is None:
                return
            if not head.upgrade and head.method in ("GET", "HEAD"):
                # The demo page and the browser client (SIGNALING_DEMO_PAGE).
                page = self.hub.assets.response(head.path, head.method == "HEAD", head.keep_alive)
                if page is not None:
                    self._http_write(page, head.keep_alive)
                    if not head.keep_alive:
                        return
                    continue
            if head.upgrade or (head.method == "GET" and head.path not in HEALTH_PATHS):
                # Line lengths and header syntax first, as websockets read them (431/414/400)
                refusal = upgrade.check_head(head)
                if refusal is not None:
                    self._refuse_upgrade(refusal)
                    return
                if head.method != "GET":
                    self._http_reply(405, b"method not allowed\n", None, allow="GET")
                    return
                if head.body:  # websockets would drop it without an answer
                    self._http_reply(400, b"a WebSocket handshake has no body\n", None)
                    return
                rest = bytes(buf)
                self._request = None
                self._upgrade(head)
                if rest and self.opened and not self.closed:
                    self._frames_in(rest)
                    self._pump()
                # Otherwise the upgrade was refused and the connection closes: rest is dropped.
                return
            if head.method not in ("GET", "HEAD"):
                self._http_reply(405, b"method not allowed\n", None, allow="GET, HEAD")
                return
            if head.path in HEALTH_PATHS:
                ready = head.path == "/healthz" or self.hub.accepting
                body = b"ok\n" if ready else b"draining\n"
                self._http_reply(200 if ready else 503, body, head)
            else:  # HEAD of a WebSocket path
                self._http_reply(405, b"method not allowed\n", None, allow="GET")
            if not head.keep_alive:
                return

    def _http_reply(
        self, status: int, body: bytes, head: http.Head | None, allow: str = ""
    ) -> None:
        """Answer one request; without ``head`` (an error) or keep-alive, close after it."""
        keep = head is not None and head.keep_alive
        only = head is not None and head.method == "HEAD"
        if status >= 400 and status != 503:
            faults.fault(f"http_{status}", "HTTP request answered %d", status)
        extra = (("Allow", allow),) if allow else ()
        self._http_write(
            http.response(status, body, head_only=only, keep_alive=keep, headers=extra), keep
        )

    def _http_write(self, response: bytes, keep: bool) -> None:
        transport = self.transport
        transport.write(response)
        if not keep:
            self.closed = True
            self._request = None
            transport.close()
        elif transport.get_write_buffer_size() > self.hub.settings.send_buffer_bytes:
            self._slow_consumer()  # pipelined probes that never read their answers

    def _feed(self, data: bytes) -> None:
        ws = self._protocol()
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                self._frame(event)

    def eof_received(self) -> bool | None:
        ws = self.ws
        if ws is not None:
            ws.receive_eof()
            self._pump()
        elif not self.closed:
            # Before the upgrade, or open at a frame boundary: what websockets does then
            # (no close frame after an EOF, 1006) is to close the socket.
            self.closed = True
            self.transport.close()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._ice_timer is not None:
            self._ice_timer.cancel()
        ws = self.ws
        if ws is not None:
            sent = ws.close_sent
            if sent is not None and sent.code in CLIENT_FAULTS and not ws.close_rcvd_then_sent:
                faults.fault(
                    f"close_{sent.code}",
                    "client closed for %s (%d): %s",
                    CLIENT_FAULTS[sent.code],
                    sent.code,
                    sent.reason,
                    peer=self.peer_id,
                )
        hub = self.hub
        hub.connections.discard(self)
        if self._socket_counted:
            self._socket_counted = False
            hub.admission.socket_closed()
            self.session.closed(hub.loop.time())
        if self._expiry is not None:
            self._expiry.cancel()
            self._expiry = None
        if self.opened:
            self.opened = False
            hub.metrics.connections_open["v2" if self.protocol == 2 else "v1"] -= 1
            if not hub.ready and not any(conn.opened for conn in hub.connections):
                hub.all_closed.set()
        self._run(self.session.disconnect(time.time()))

    # ---- inbound ---------------------------------------------------------------------------

    def _upgrade(self, head: http.Head) -> None:
        """The opening handshake (see ``upgrade``), header syntax checked: readiness, admission
        (origins, tokens, limits: ``Session.handshake``), then the upgrade headers; the
        101 from a template, or a refusal and close."""
        headers = head.headers
        hub = self.hub
        if not hub.ready:
            self._refuse_upgrade(upgrade.Refusal(503, "Server is shutting down.\n"))
            return
        now = hub.loop.time()
        peer = self.transport.get_extra_info("peername")
        session = self.session
        reject = session.handshake(
            peer[0] if isinstance(peer, (tuple, list)) else None,
            head.target,
            headers,
            upgrade.offered_subprotocols(headers),
            now,
            time.time(),
        )
        if reject is not None:
            self._refuse_upgrade(upgrade.Refusal(reject.status, reject.body), reject.retry_after)
            return
        accepted = upgrade.accept(head.version, headers)
        if isinstance(accepted, upgrade.Refusal):
            self._refuse_upgrade(accepted)
            return
        response, v2 = accepted
        self.transport.write(response)
        self.protocol = 2 if v2 else 1
        session.opened(now, self.protocol)
        if session.expires_at is not None:
            self._expiry = hub.loop.call_at(session.expires_at, self._check_now)
        self.opened = True
        version = "v2" if v2 else "v1"
        hub.metrics.connections_open[version] += 1
        hub.metrics.connections_opened[version] += 1

    def _refuse_upgrade(self, refusal: upgrade.Refusal, retry_after: int | None = None) -> None:
        _ws_log.info("connection rejected (%d)", refusal.status)
        self.closed = True
        transport = self.transport
        transport.write(
            http.response(
                refusal.status,
                refusal.body.encode(),
                headers=refusal.headers,
                retry_after=retry_after,
            )
        )
        transport.close()

    def _take_text_frames(self, data: bytes, pos: int) -> int:
        """Handle complete, final, masked text frames from ``data[pos:]``, which starts at
        a frame boundary; return the position of the first frame not taken.

        The common case of client traffic, parsed at a fraction of the generic parser's
        cost (profile: about a quarter of the server's CPU). It stops at the first frame
        that is anything else (control, fragment, reserved bits, over the size limit,
        incomplete header) so that websockets handles it, including errors and close codes.
        A frame whose payload is incomplete is kept in ``_partial`` until it is whole.
        ``data`` is ``bytes``, never a ``bytearray``: compiled, indexing and slicing it
        are then native (a union of the two went through generic item access).
        """
        limit = self.hub.settings.max_message_bytes
        n = len(data)
        while n - pos >= 6:
            if data[pos] != 0x81:  # FIN, no RSV bits, text
                break
            length = data[pos + 1]
            if length < 0x80:  # clients must mask
                break
            length &= 0x7F
            head = pos + 2
            if length == 126:
                if n - pos < 8:
                    break
                length = (data[head] << 8) | data[head + 1]
                head += 2
            elif length == 127:
                break
            end = head + 4 + length
            if length > limit:
                break
            if end > n:  # the rest comes in later segments: keep it here, not in websockets
                self._partial = bytearray(data[pos:])
                self._partial_size = end - pos
                return n
            payload = apply_mask(data[head + 4 : end], data[head : head + 4])
            pos = end
            self._text(payload)
            if self.closed:
                return pos
            ws = self.ws
            if ws is not None and ws.state is not OPEN:
                return pos
        return pos

    def _frame(self, frame: Frame) -> None:
        op = frame.opcode
        # Incoming frames always carry bytes (memoryview only appears on the send side).
        data = cast(bytes, frame.data)
        if op is TEXT or op is BINARY:
            if not frame.fin:
                self._fragment_op = op
                self._fragments = bytearray(data)
                self._fragment_charge = max(len(data), FRAGMENT_COST)
                return
        elif op is CONT:
            # websockets bounds the bytes; the frame count is bounded here: every frame
            # counts at least FRAGMENT_COST bytes against the message size limit.
            self._fragment_charge += max(len(data), FRAGMENT_COST)
            if self._fragment_charge > self.hub.settings.max_message_bytes:
                self._fragments = None
                self._protocol().fail(1009, "message too big (fragments)")
                return
            fragments = self._fragments
            if fragments is None:  # websockets refuses a continuation without a start
                fragments = self._fragments = bytearray()
            fragments += data
            if not frame.fin:
                return
            op = self._fragment_op or BINARY
            data = bytes(fragments)
            self._fragments = None
            self._fragment_op = None
        else:  # ping, pong, close: the protocol object already answered
            if op is not CLOSE and self._state() is OPEN:
                # A ping/pong flood costs the server too: same limits, same refusal.
                self._refuse(self.session.message(len(data) + 1, self.last_seen))
            return
        if self._state() is not OPEN:
            return
        if op is BINARY:
            refused = self.session.message(len(data), self.last_seen)
            if refused is not None:
                self._refuse(refused)
                return
            self.hub.metrics.received["invalid"] += 1
            self.error("bad_message", "Binary frames are not supported; send JSON text")
            return
        self._text(data)

    def _text(self, data: bytes) -> None:
        refused = self.session.message(len(data), self.last_seen)
        if refused is not None:
            # Over a per-connection limit: refused before it is even parsed.
            self._refuse(refused)
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self._protocol().fail(1007, "invalid UTF-8")
            self._pump()
            return
        session = self.session
        out = session.receive(text, self.last_seen, time.time())
        if type(out) is Signal:  # the hot path: a relayed signal
            room = session.room
            if room is None or not room.mailbox.post((out, self)):
                self._run(session.undelivered(out))
            return
        self._run(cast(Effects, out))  # (mypy narrows ``type(x) is C`` one way only)

    def _run(self, effects: Effects) -> None:
        """Carry out what the session decided, in order."""
        for effect in effects:
            if isinstance(effect, Post):
                sent = effect.room.mailbox.post(
                    (effect.command, self if effect.attach else None), force=effect.force
                )
                if not sent and not effect.force:
                    self._run(self.session.undelivered(effect))
            else:
                self._refuse(effect)

    # ---- rooms.peer.Peer: told by the room once its journal decided ----------------------

    @property
    def peer_id(self) -> str:
        return self.session.peer_id

    def entered(self, room: RoomHandle, peer_id: str) -> None:
        # Gone while the entry was pending: the session leaves the new room too.
        now = self.hub.loop.time()
        self._run(self.session.entered(room, peer_id, now, time.time(), gone=self.closed))

    def refused(self, room: RoomHandle) -> None:
        self.session.refused(room)

    def evicted(self, room: RoomHandle) -> None:
        self.session.evicted(room, self.hub.loop.time())

    # ---- outbound --------------------------------------------------------------------------

    def ice_servers(self, peer_id: str) -> str | None:
        """ICE servers (JSON) for member ``peer_id``'s v2 room reply, with TURN credentials
        that a timer replaces (``ice_servers`` message) a quarter TTL before they expire."""
        policy = self.hub.ice
        if self.protocol != 2 or not policy.enabled:
            return None
        if policy.refreshing:
            if self._ice_timer is not None:
                self._ice_timer.cancel()
            self._ice_timer = self.hub.loop.call_later(policy.refresh_after, self._refresh_ice)
        return turn.ice_servers_json(policy, peer_id, self.hub.wall_clock())

    def _refresh_ice(self) -> None:
        self._ice_timer = None
        if self.closed or self.session.room is None:
            return  # out of rooms: the next room reply brings fresh credentials
        servers = self.ice_servers(self.peer_id)
        if servers is not None:
            self.write(wire.text_frame(turn.ice_servers_message(servers)))

    def _refuse(self, refused: Refuse | None) -> None:
        """The session's refusal: the error reply, and a 1008 close when it says so."""
        if refused is None:
            return
        self._reply(refused.code, refused.message, refused.retry_after_ms)
        if refused.close:
            self.close(1008, "rate limit exceeded" if refused.code == "rate_limited" else "")

    def error(self, code: ErrorCode, message: str) -> None:
        """An error reply the room decided (``Peer``); the session charges what it must."""
        self.session.failed(code, self.hub.loop.time())
        self._reply(code, message)

    def _reply(self, code: ErrorCode, message: str, retry_after_ms: int | None = None) -> None:
        self.hub.metrics.errors[code] += 1
        # Built each time: a cache keyed by text a client chose would be the client's to fill.
        self.write(wire.text_frame(wire.error(code, message, retry_after_ms=retry_after_ms)))

    def write(self, frame: bytes) -> None:
        """Queue a ready-made frame; it goes out with this turn's other frames."""
        if self.closed:
            return
        out = self.out
        if not out:
            self.hub.mark_dirty(self)
        out.append(frame)
        self.out_bytes += len(frame)
        if self.out_bytes > self.hub.flush_threshold:
            # A big batch: hand it to the socket now. Only bytes the kernel refuses count
            # against the client, so a burst to a client that reads is never punished.
            self.flush()

    def flush(self) -> None:
        out = self.out
        if not out:
            return
        self.out = []
        self.out_bytes = 0
        if self.closed:
            return
        ws = self.ws
        if ws is not None and ws.state is not OPEN:
            return
        transport = self.transport
        if transport.is_closing():
            return
        transport.writelines(out)
        if transport.get_write_buffer_size() > self.hub.settings.send_buffer_bytes:
            self._slow_consumer()

    def _pump(self) -> None:
        """Write what the protocol object produced (pong, close); honour EOF; drop the
        protocol object if it holds nothing now (``_release``).

        These bytes count against the send buffer like every other frame: a client that
        sends pings and never reads the pongs is a slow consumer too."""
        if self.closed:
            return
        transport = self.transport
        ws = self.ws
        if ws is not None:
            for chunk in ws.data_to_send():
                if chunk:
                    transport.write(chunk)
                else:
                    self.closed = True
                    transport.close()
                    return
        if transport.get_write_buffer_size() + self.out_bytes > self.hub.settings.send_buffer_bytes:
            self._slow_consumer()
            return
        self._release()

    def _slow_consumer(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.out = []
        self.out_bytes = 0
        self.hub.metrics.slow_consumers += 1
        faults.fault(
            "slow_consumer", "slow consumer disconnected", level=logging.WARNING, peer=self.peer_id
        )
        self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (flushing queued frames first)."""
        if self.closed or not self.opened or self._state() is not OPEN:
            return
        self.flush()
        self.session.closing(self.hub.loop.time())
        self._protocol().send_close(code, reason)
        self._pump()

    def _check_now(self) -> None:
        self._expiry = None
        self.check(self.hub.loop.time())

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def check(self, now: float) -> None:
        """Act on what the session's clocks say (keepalive, handshake and close
        timeouts, token expiry, roomless timeout); driven by the server's sweep."""
        if self.closed:
            return
        due = self.session.due(now, self.last_seen)
        if due is None:
            return
        if isinstance(due, Ping):
            self._protocol().send_ping(os.urandom(4))
            self._pump()
        elif isinstance(due, Close):
            if due.error is not None:  # the reply only: the close carries due's reason
                self._reply(due.error.code, due.error.message)
            self.close(due.code, due.reason)
        else:
            if due.reason == "no pong":
                faults.fault("no_pong", "no pong: disconnecting", peer=self.peer_id)
            self.abort()
