"""One client socket: an ``asyncio.Protocol`` driving websockets' sans-I/O ``ServerProtocol``.

Why not the ``websockets.asyncio`` server: it runs a coroutine per connection and a
coroutine per ``send``. Here bytes are parsed in ``data_received`` and a message goes
straight into its room's mailbox, with no task, future or coroutine of its own; frames
for a client are queued in a list and written with one ``writelines`` per event-loop
turn (see ``Hub.mark_dirty``). The websockets library still does all the protocol work
(handshake, framing, UTF-8 and size limits, ping/pong and close handshakes).

A client that does not read cannot hurt others: its unsent bytes are bounded and when
they overflow it alone is disconnected.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import secrets
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from signaling.core import commands as c
from signaling.core import wire
from signaling.core.errors import ErrorCode
from signaling.core.room import RESUME_FAILED, ROOM_NOT_FOUND
from signaling.rooms.peer import RoomHandle
from signaling.transport.framing import MAX_HEADER, frame_size

try:
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover - the C extension is absent on exotic platforms
    from websockets.utils import apply_mask

if TYPE_CHECKING:
    from signaling.transport.server import Hub

log = logging.getLogger("signaling.transport.connection")
_ws_log = logging.getLogger("websockets.server")

OPEN, CONNECTING = State.OPEN, State.CONNECTING
TEXT, BINARY, CONT, PONG = Opcode.TEXT, Opcode.BINARY, Opcode.CONT, Opcode.PONG
V2 = Subprotocol(wire.V2_SUBPROTOCOL)
TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
HEALTH_PATHS = ("/healthz", "/readyz")
# websockets reads 128 header lines of 8 KiB each; a browser sends one or two KiB.
MAX_REQUEST_HEAD = 16 * 1024


def _select_subprotocol(_: ServerProtocol, offered: Sequence[Subprotocol]) -> Subprotocol | None:
    """v2 when asked for; anything else (including nothing) is the seed protocol, v1."""
    return V2 if V2 in offered else None


def _new_token() -> tuple[str, str]:
    token = secrets.token_urlsafe(24)
    return token, digest(token)


def digest(token: str) -> str:
    """Only a digest of a resume token is kept in events and journals."""
    return hashlib.sha256(token.encode()).hexdigest()


_error_frames: dict[tuple[str, str], bytes] = {}


class Connection(asyncio.Protocol):
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.peer_id = str(uuid.uuid4())
        self.protocol: c.Protocol = 1
        # Where this client's commands go (the room it asked for last) and the room whose
        # journal lists it as a member; they differ while a create/join/resume is pending.
        self.room: RoomHandle | None = None
        self.home: RoomHandle | None = None
        self.opened = False
        self.closed = False
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.ping_sent = False
        self.closing_since = 0.0
        self.created = self.last_seen = hub.loop.time()
        self._fragments: list[bytes] = []
        self._fragment_op: Opcode | None = None
        self._skip = 0  # bytes websockets needs to finish its current frame
        self._head = b""  # a frame header websockets holds whose length is not known yet
        self._request = bytearray()  # the opening handshake, until its blank line
        self._partial: bytearray | None = None  # a fast-path text frame, still incomplete
        self._partial_size = 0
        self.ws = ServerProtocol(
            subprotocols=[V2],
            select_subprotocol=_select_subprotocol,
            max_size=hub.settings.max_message_bytes,
            logger=_ws_log,
        )
        self.transport: asyncio.Transport

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.hub.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.last_seen = self.hub.loop.time()
        self.ping_sent = False
        ws = self.ws
        state = ws.state
        if state is OPEN:
            pos = 0
            if self._partial is not None:
                pos = self._complete_partial(data)
                if pos == len(data) or self.closed or ws.state is not OPEN:
                    self._frames_in(data, pos)  # nothing, or what follows a close
                    self._pump()
                    return
            if not self._skip and not self._head and ws.current_size is None:
                # At a frame boundary of websockets' parser: the common case, whole text
                # frames, is handled without it (and without waking it: no _pump).
                pos = self._take_text_frames(data, pos)
                if pos == len(data) or self.closed:
                    return
            self._frames_in(data, pos)
        elif state is CONNECTING:
            self._request_in(data)
        else:  # closing: websockets reads the peer's close frame or discards
            self._feed(data)
        self._pump()

    def _frames_in(self, data: bytes, pos: int = 0) -> None:
        """Frames of an open connection: the fast path at frame boundaries, websockets
        for everything else, one whole frame at a time (see ``framing``).

        ``_skip`` counts the bytes websockets still needs to finish the frame it is in,
        ``_head`` is the start of a header it holds whose length is not known yet; both
        are zero/empty exactly when its parser waits for the first byte of a frame.
        """
        ws = self.ws
        n = len(data)
        while pos < n:
            if ws.state is not OPEN:  # failed or closing: websockets discards the rest
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
            if ws.current_size is None:
                pos = self._take_text_frames(data, pos)
                if pos == n or self.closed:
                    return
                if ws.state is not OPEN:
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
        self._take_text_frames(buf, 0)
        return need

    def _request_in(self, data: bytes) -> None:
        """The opening handshake: websockets gets the request head and nothing after it,
        so that it neither parses the bytes that follow as frames before the connection
        is open nor loses track of where the first frame begins."""
        buf = self._request
        start = max(len(buf) - 3, 0)
        buf += data
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buf) > MAX_REQUEST_HEAD:
                self._request = bytearray()
                self._feed(bytes(buf))  # websockets answers 431 or drops it
            return
        end += 4
        head, rest = bytes(buf[:end]), bytes(buf[end:])
        self._request = bytearray()
        self._feed(head)
        if rest and self.ws.state is OPEN:
            self._frames_in(rest)
        # Otherwise the request was answered with an HTTP status and EOF: rest is dropped.

    def _feed(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if type(event) is Frame:
                self._frame(event)
            elif type(event) is Request:
                self._handshake(event)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._pump()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        hub = self.hub
        hub.connections.discard(self)
        if self.opened:
            self.opened = False
            hub.metrics.connections_open["v2" if self.protocol == 2 else "v1"] -= 1
            if not hub.ready and not any(conn.opened for conn in hub.connections):
                hub.all_closed.set()
        room, home = self.room, self.home
        self.room = None
        if home is not None:
            self._disconnect(home, self.peer_id)
        if room is not None and room is not home:
            self._disconnect(room, self.peer_id)  # queued behind the pending entry

    def _disconnect(self, room: RoomHandle, peer_id: str) -> None:
        """This socket is gone: v2 members are detached (resumable), v1 members leave."""
        now = time.time()
        command: c.Command = (
            c.Detach(peer_id, now) if self.protocol == 2 else c.Leave(peer_id, "disconnected", now)
        )
        room.mailbox.post((command, None), force=True)

    # ---- inbound ---------------------------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        ws = self.ws
        hub = self.hub
        path = request.path.partition("?")[0]
        upgrade = "upgrade" in request.headers.get("Connection", "").lower()
        if path in HEALTH_PATHS and not upgrade:
            ready = path == "/healthz" or hub.accepting
            ws.send_response(ws.reject(200 if ready else 503, "ok\n" if ready else "draining\n"))
            return
        if not hub.ready:
            ws.send_response(ws.reject(503, "Server is shutting down.\n"))
            return
        response = ws.accept(request)
        ws.send_response(response)
        if response.status_code == 101:
            self.opened = True
            self.protocol = 2 if ws.subprotocol == V2 else 1
            version = "v2" if self.protocol == 2 else "v1"
            hub.metrics.connections_open[version] += 1
            hub.metrics.connections_opened[version] += 1

    def _take_text_frames(self, data: bytes | bytearray, pos: int) -> int:
        """Handle complete, final, masked text frames from ``data[pos:]``, which starts at
        a frame boundary; return the position of the first frame not taken.

        The common case of client traffic, parsed at a fraction of the generic parser's
        cost (profile: about a quarter of the server's CPU). It stops at the first frame
        that is anything else (control, fragment, reserved bits, over the size limit,
        incomplete header) so that websockets handles it, including errors and close codes.
        A frame whose payload is incomplete is kept in ``_partial`` until it is whole.
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
            if self.closed or self.ws.state is not OPEN:
                return pos
        return pos

    def _frame(self, frame: Frame) -> None:
        op = frame.opcode
        # Incoming frames always carry bytes (memoryview only appears on the send side).
        data = cast(bytes, frame.data)
        if op is TEXT or op is BINARY:
            if not frame.fin:
                self._fragment_op = op
                self._fragments = [data]
                return
        elif op is CONT:
            self._fragments.append(data)
            if not frame.fin:
                return
            op = self._fragment_op or BINARY
            data = b"".join(self._fragments)
            self._fragments = []
            self._fragment_op = None
        else:  # ping, pong, close: the protocol object already answered
            return
        if self.ws.state is not OPEN:
            return
        if op is BINARY:
            self.hub.metrics.received["invalid"] += 1
            self.error("bad_message", "Binary frames are not supported; send JSON text")
            return
        self._text(data)

    def _text(self, data: bytes) -> None:
        try:
            text = data.decode()
        except UnicodeDecodeError:
            self.ws.fail(1007, "invalid UTF-8")
            self._pump()
            return
        try:
            self._message(text)
        except wire.WireError as err:
            self.error(err.code, err.message)

    def _message(self, text: str) -> None:
        metrics = self.hub.metrics
        try:
            msg = wire.parse(text)
        except wire.WireError:
            metrics.received["invalid"] += 1
            raise
        kind = msg.type
        if kind == "signal":  # the hot path first
            metrics.received["signal"] += 1
            room = self.room
            if room is None:
                self.error("not_in_room", "Not in a room: create or join first")
                return
            payload = msg.payload
            if payload is None:
                raise wire.WireError("bad_message", "Field 'payload' is required")
            to = traceparent = None
            if self.protocol == 2:
                to = wire.optional_str(msg, "to")
                traceparent = self._traceparent(msg)
            command = c.Signal(self.peer_id, payload, to, time.time(), traceparent)
            if not room.mailbox.post((command, self)):
                self.error("overloaded", "Room is busy; retry later")
            return
        if kind not in wire.MESSAGE_TYPES or (self.protocol == 1 and kind in wire.V2_ONLY_TYPES):
            metrics.received["invalid"] += 1
            raise wire.WireError("unknown_type", f"Unknown message type {kind!r}")
        metrics.received[kind] += 1
        if kind == "create":
            self._create()
        elif kind == "join":
            self._join(wire.require_str(msg, "roomId"))
        elif kind == "leave":
            self._leave()
        else:
            self._resume(msg)

    def _traceparent(self, msg: wire.Inbound) -> str | None:
        tp = wire.optional_str(msg, "traceparent")
        if tp is not None and not TRACEPARENT.fullmatch(tp):
            raise wire.WireError("bad_message", "Field 'traceparent' is not a W3C traceparent")
        return tp

    # Entering a room leaves the current one, but only once the new one is certain: the
    # client's commands go to the new room at once (so they follow the entry in order), and
    # the room it was in hears ``Leave`` only when the new room's journal has it
    # (``entered``). A refused or failed create, join or resume leaves the client exactly
    # where it was, as the seed does (``refused``).

    def _create(self) -> None:
        handle = self.hub.supervisor.create()
        if handle is None:
            self.error("rooms_exhausted", "No free room id; try again later")
            return
        token, token_digest = _new_token() if self.protocol == 2 else (None, "")
        command = c.Create(self.peer_id, self.protocol, token_digest, time.time(), token)
        handle.mailbox.post((command, self), force=True)
        self.room = handle

    def _join(self, room_id: str) -> None:
        handle = self.hub.supervisor.get(room_id)
        if handle is None:
            self.error(ROOM_NOT_FOUND.code, ROOM_NOT_FOUND.message)
            return
        token, token_digest = _new_token() if self.protocol == 2 else (None, "")
        command = c.Join(self.peer_id, self.protocol, token_digest, time.time(), token)
        self._enter(handle, command)

    def _leave(self) -> None:
        room, home = self.room, self.home
        if room is None:
            self.error("not_in_room", "Not in a room")
            return
        # Routing changes when the room commits the departure (``evicted``): a leave that
        # fails leaves the client where it was, and later signals still follow in order.
        if home is not None and home is not room:
            home.mailbox.post((c.Leave(self.peer_id, "left", time.time()), None), force=True)
        room.mailbox.post((c.Leave(self.peer_id, "left", time.time()), self), force=True)

    def _resume(self, msg: wire.Inbound) -> None:
        room_id = wire.require_str(msg, "roomId")
        peer_id = wire.require_str(msg, "peerId")
        token = wire.require_str(msg, "resumeToken")
        last_seq = wire.require_seq(msg, "lastSeq")
        handle = self.hub.supervisor.get(room_id)
        if handle is None:
            self.hub.metrics.resumes["failed"] += 1
            self.error(RESUME_FAILED.code, RESUME_FAILED.message)
            return
        self._enter(handle, c.Resume(peer_id, digest(token), last_seq, time.time()))

    def _enter(self, handle: RoomHandle, command: c.Command) -> None:
        if not handle.mailbox.post((command, self)):
            self.error("overloaded", "Room is busy; retry later")
            return
        self.room = handle

    # ---- rooms.peer.Peer: told by the room once its journal decided ----------------------

    def entered(self, room: RoomHandle, peer_id: str) -> None:
        home = self.home
        if home is not None and home is not room:
            home.mailbox.post((c.Leave(self.peer_id, "left", time.time()), None), force=True)
        self.home = room
        self.peer_id = peer_id
        if self.closed:  # gone while the entry was pending: leave the new room too
            self._disconnect(room, peer_id)

    def refused(self, room: RoomHandle) -> None:
        if self.room is room:
            self.room = self.home

    def evicted(self, room: RoomHandle) -> None:
        if self.home is room:
            self.home = None
        if self.room is room:
            self.room = None

    # ---- outbound --------------------------------------------------------------------------

    def error(self, code: ErrorCode, message: str) -> None:
        self.hub.metrics.errors[code] += 1
        key = (code, message)
        frame = _error_frames.get(key)
        if frame is None:
            frame = wire.text_frame(wire.error(code, message))
            if len(_error_frames) < 256:
                _error_frames[key] = frame
        self.write(frame)

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
        if self.closed or self.ws.state is not OPEN:
            return
        transport = self.transport
        if transport.is_closing():
            return
        transport.writelines(out)
        if transport.get_write_buffer_size() > self.hub.settings.send_buffer_bytes:
            self._slow_consumer()

    def _pump(self) -> None:
        """Write what the protocol object produced (handshake, pong, close); honour EOF."""
        if self.closed:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                self.transport.write(chunk)
            else:
                self.closed = True
                self.transport.close()
                return

    def _slow_consumer(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.out = []
        self.out_bytes = 0
        self.hub.metrics.slow_consumers += 1
        log.warning("slow consumer disconnected", extra={"peer": self.peer_id})
        self.transport.abort()

    def close(self, code: int, reason: str) -> None:
        """Start the closing handshake (flushing queued frames first)."""
        if self.closed or self.ws.state is not OPEN:
            return
        self.flush()
        self.ws.send_close(code, reason)
        self.closing_since = self.hub.loop.time()
        self._pump()

    def abort(self) -> None:
        if not self.closed:
            self.closed = True
            self.transport.abort()

    def check(self, now: float) -> None:
        """Keepalive and handshake/close timeouts, driven by the server's periodic sweep."""
        if self.closed:
            return
        settings = self.hub.settings
        if not self.opened:
            if now - self.created > settings.handshake_timeout:
                self.abort()
            return
        if self.closing_since:
            if now - self.closing_since > settings.close_timeout:
                self.abort()
            return
        idle = now - self.last_seen
        if idle > settings.ping_interval + settings.ping_timeout:
            log.info("no pong: disconnecting", extra={"peer": self.peer_id})
            self.abort()
        elif idle > settings.ping_interval and not self.ping_sent:
            self.ping_sent = True
            self.ws.send_ping(os.urandom(4))
            self._pump()
