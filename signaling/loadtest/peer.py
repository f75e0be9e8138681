"""One load-generating client socket: an ``asyncio.Protocol``, no task per message.

Frames are parsed in ``data_received``; a signal's ids and send time are found with one
regex search over the frame (the payload is never decoded as JSON), and new signals are
queued on the sender and written by the run with one ``writelines`` per socket per
event-loop turn. Anything that is not one of our signals (replies, errors, v2 membership
events) takes the slow path through ``json``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from typing import TYPE_CHECKING, Any, cast

from signaling.loadtest import frames

if TYPE_CHECKING:
    from signaling.loadtest.run import Run

# Our payload starts with these three fields; whitespace is tolerated in case a server
# (or proxy) re-encodes the JSON it forwards.
SIGNAL_FIELDS = re.compile(rb'"s":\s*(\d+),\s*"n":\s*(\d+),\s*"t":\s*(-?\d+)')
_search = SIGNAL_FIELDS.search
_clock = time.perf_counter_ns
OVERLOADED = "overloaded"
RATE_LIMITED = "rate_limited"
REFUSALS = (OVERLOADED, RATE_LIMITED)


class Peer(asyncio.Protocol):
    STRAY_SIGNAL = "signal without our fields"

    def __init__(self, run: Run, index: int, room: int, slot: int) -> None:
        self.run = run
        self.index = index  # global: room * peers + slot
        self.room = room
        self.slot = slot  # position in the room
        self.base = index - slot  # global index of the room's slot 0
        self.transport: asyncio.Transport | None = None
        self.mask = os.urandom(4)
        self.key = frames.new_key()
        self.reader = frames.FrameReader()
        self.upgraded = False
        self.server_closed = False  # a close frame came: counted once, not also as lost
        self._head = b""
        loop = run.loop
        self.opened: asyncio.Future[None] = loop.create_future()
        self.reply: asyncio.Future[dict[str, Any]] | None = None
        self.room_id = ""
        # sending side
        self.sent = 0
        self.rejected = 0
        self.inflight = 0
        self.pending: dict[int, int] = {}  # n -> recipients still to receive it (P > 2)
        self.out: list[bytes] = []
        self.done = False  # sent its maximum
        # receiving side, per slot of the room
        peers = run.plan.peers
        self.got = [0] * peers
        self.next_n = [0] * peers
        self.disorder = 0

    # ---- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        plan = self.run.plan
        subprotocol = "signaling.v2" if plan.protocol == 2 else None
        self.transport.write(
            frames.handshake_request(
                plan.host_header, plan.path, self.key, subprotocol, plan.headers
            )
        )

    def connection_lost(self, exc: Exception | None) -> None:
        run = self.run
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"connection lost during handshake: {exc}"))
        if self.reply is not None and not self.reply.done():
            self.reply.set_exception(ConnectionError("connection lost"))
        if not run.stopping and not self.server_closed:
            run.errors["connection lost"] += 1

    def _frames(self, data: bytes) -> list[tuple[int, bytes]]:
        """The complete messages in ``data`` (after the handshake's response head)."""
        if not self.upgraded:
            data = self._handshake(data)
            if not data:
                return []
        try:
            return self.reader.feed(data)
        except frames.ProtocolError as err:
            self.run.errors[f"protocol error: {err}"] += 1
            self.abort()
            return []

    def data_received(self, data: bytes) -> None:
        messages = self._frames(data)
        run = self.run
        now = (_clock() - run.t0) // 1000
        for opcode, body in messages:
            if opcode != frames.TEXT:
                self._control_frame(opcode, body)
                continue
            m = _search(body)
            if m is None:
                self._message(body)
                continue
            # The hot path: one of our signals.
            sender = int(m[1])
            n = int(m[2])
            slot = sender - self.base
            next_n = self.next_n
            if n < next_n[slot]:  # a repeat, or older than one already received
                self.disorder += 1
                continue
            next_n[slot] = n + 1  # a gap is a refused signal or a loss: the counts tell
            self.got[slot] += 1
            run.delivered += 1
            if run.measuring:
                run.latencies.append(now - int(m[3]))
            if run.closed_loop:
                src = run.peers[sender]
                pending = src.pending
                if pending:
                    left = pending[n] - 1
                    if left:
                        pending[n] = left
                        continue
                    del pending[n]
                src.inflight -= 1
                if run.sending:
                    src.refill(now)
        if not run.sending and run.delivered >= run.expected:
            run.drained.set()

    # ---- sending ---------------------------------------------------------------------------

    def _refill_later(self) -> None:
        if self.run.sending and self.run.closed_loop:
            self.refill((_clock() - self.run.t0) // 1000)

    def refill(self, now: int) -> None:
        """Closed loop: top the window up again."""
        window = self.run.plan.window
        limit = self.run.max_per_peer
        while self.inflight < window and self.sent < limit:
            self.queue_signal(now)
        if self.sent >= limit and not self.done:
            self.done = True
            self.run.exhausted_one()

    def queue_signal(self, now: int) -> None:
        run = self.run
        n = self.sent
        self.sent = n + 1
        self.inflight += 1
        fanout = run.fanout
        run.expected += fanout
        run.sent += 1
        if fanout > 1:
            self.pending[n] = fanout
        self.send(frames.client_frame(frames.TEXT, run.template % (self.index, n, now), self.mask))

    def send(self, frame: bytes) -> None:
        out = self.out
        if not out:
            self.run.mark_dirty(self)
        out.append(frame)

    def send_json(self, message: dict[str, Any]) -> None:
        self.send(frames.client_frame(frames.TEXT, json.dumps(message).encode(), self.mask))

    def flush(self) -> None:
        out = self.out
        self.out = []
        transport = self.transport
        if out and transport is not None and not transport.is_closing():
            if self.run.plan.coalesce:
                transport.writelines(out)
            else:  # one write per frame, as a real client sends them
                write = transport.write
                for frame in out:
                    write(frame)

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.flush()
            transport.write(frames.client_frame(frames.CLOSE, b"\x03\xe8", self.mask))
            transport.close()

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    # ---- the slow paths --------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        head = self._head + data
        end = head.find(b"\r\n\r\n")
        if end < 0:
            if len(head) > 65536:
                self.opened.set_exception(frames.HandshakeError("response head too long"))
                self.abort()
            self._head = head
            return b""
        self._head = b""
        plan = self.run.plan
        try:
            frames.check_response(
                head[:end], self.key, "signaling.v2" if plan.protocol == 2 else None
            )
        except frames.HandshakeError as err:
            if not self.opened.done():
                self.opened.set_exception(err)
            self.abort()
            return b""
        self.upgraded = True
        self.opened.set_result(None)
        return head[end + 4 :]

    def _control_frame(self, opcode: int, body: bytes) -> None:
        if opcode == frames.PING:
            self.send(frames.client_frame(frames.PONG, body, self.mask))
        elif opcode == frames.CLOSE:
            code = int.from_bytes(body[:2], "big") if len(body) >= 2 else 1005
            self.server_closed = True
            if not self.run.stopping:
                self.run.errors[f"closed by server ({code})"] += 1
            if self.transport is not None and not self.transport.is_closing():
                self.transport.write(frames.client_frame(frames.CLOSE, body[:2], self.mask))
                self.transport.close()
        elif opcode == frames.BINARY:
            self.run.errors["binary frame"] += 1

    def _message(self, body: bytes) -> None:
        run = self.run
        try:
            msg = json.loads(body)
        except ValueError:
            run.errors["frame is not JSON"] += 1
            return
        if not isinstance(msg, dict):
            run.errors["frame is not a JSON object"] += 1
            return
        kind = msg.get("type")
        reply = self.reply
        if kind in ("room_created", "room_joined"):
            self.room_id = str(msg.get("roomId", ""))
            if reply is not None and not reply.done():
                reply.set_result(msg)
            else:
                run.errors[f"unexpected {kind}"] += 1
        elif kind == "error":
            code = str(msg.get("code") or msg.get("message"))
            if reply is not None and not reply.done():
                reply.set_exception(RuntimeError(f"server refused: {code}: {msg.get('message')}"))
            elif code in REFUSALS or msg.get("message") == "Room is busy; retry later":
                # Refused, not relayed: it frees its window slot and is expected nowhere
                # (a closed loop would otherwise wait for it forever).
                self.rejected += 1
                self.inflight -= 1
                run.expected -= run.fanout
                if code == RATE_LIMITED:
                    # The server's per-connection limit, not its capacity: the run fails
                    # and says so, and the window is topped up once the server says so
                    # (at once would only push into the limit until the 1008 close).
                    run.errors["error rate_limited (raise SIGNALING_MESSAGE_RATE)"] += 1
                    wait = msg.get("retryAfterMs")
                    delay = wait / 1000 if isinstance(wait, int) and wait > 0 else 0.001
                    run.loop.call_later(delay, self._refill_later)
                elif run.sending:
                    self.refill((_clock() - run.t0) // 1000)
            else:
                run.errors[f"error {code}"] += 1
        elif kind == "signal":
            run.errors[self.STRAY_SIGNAL] += 1
        elif kind == "room_expired":
            run.errors["room expired"] += 1
        # v2 membership events (peer_joined, peer_left) need no action.


class IdlePeer(Peer):
    """A connection that only holds: its handshake, its room's create or join, pongs.

    Nobody in its room sends, so any signal reaching it is an error; it stays off the
    hot path and out of the verdict."""

    STRAY_SIGNAL = "signal to an idle connection"

    def data_received(self, data: bytes) -> None:
        for opcode, body in self._frames(data):
            if opcode == frames.TEXT:
                self._message(body)
            else:
                self._control_frame(opcode, body)
