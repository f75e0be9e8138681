"""The server process: listener, admin (metrics) listener, keepalive sweep, shutdown.

``Hub`` is what every connection shares: settings, the supervisor, metrics, the set of
open connections, readiness, and the per-turn write coalescer. ``run`` wires it to the
operating system: sockets, signals and exit status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
import time
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from signaling import gcpolicy, portfile
from signaling.config import Settings
from signaling.core.room import RoomPolicy
from signaling.core.turn import IcePolicy
from signaling.journal import Journal, from_settings
from signaling.rooms.supervisor import Supervisor
from signaling.telemetry.logs import flush_faults
from signaling.telemetry.metrics import Metrics
from signaling.telemetry.tracing import Tracing
from signaling.transport.admission import Admission
from signaling.transport.connection import Connection
from signaling.transport.pacing import Pacer
from signaling.transport.tls import Certificates
from signaling.web.assets import Assets

log = logging.getLogger("signaling.transport.server")


class ListenError(Exception):
    """A port cannot be bound (in use, no permission): a start-up error, not a crash."""


def defer_accept(sock: socket.socket, seconds: float) -> None:
    """Have the kernel hand over a connection only once its first bytes (the HTTP request)
    have arrived (Linux ``TCP_DEFER_ACCEPT``, nginx's ``listen ... deferred``).

    Why: otherwise every client costs two wake-ups, one for the accept and one for its
    request, and the client's own host pays for the first (on loopback, the bench's load
    generator does: 12-15% more connections per second with it, BENCHMARKS.md). A client
    that connects and sends nothing stays with the kernel instead of holding a connection
    here; after ``seconds`` (the handshake timeout) the kernel hands it over anyway and the
    handshake timer closes it as before. TCP health checks still connect: the client's side
    of the handshake completes as usual. Elsewhere (no such option) this does nothing."""
    option = getattr(socket, "TCP_DEFER_ACCEPT", None)
    if option is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, option, max(1, math.ceil(seconds)))


class Hub:
    def __init__(
        self,
        settings: Settings,
        *,
        journal: Journal | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.metrics = metrics or Metrics()
        self.tracing = tracing or Tracing.disabled()
        self.journal = journal or from_settings(settings)
        self.metrics.journal_backend = self.journal.backend
        # Limits, origins and tokens: one process-wide policy every session asks.
        self.admission = Admission.from_settings(settings, self.metrics)
        self.supervisor = Supervisor(
            self.journal,
            self.metrics,
            self.tracing,
            policy=RoomPolicy(settings.room_timeout, settings.max_members),
            room_id_digits=settings.room_id_digits,
            mailbox_size=settings.mailbox_size,
            resume_grace=settings.resume_grace,
            room_batch=settings.room_batch,
            on_retired=self._room_retired,
            on_renamed=self.admission.room_renamed,
        )
        self.connections: set[Connection] = set()
        # The browser side: static files on the public port, ICE servers for v2 clients.
        self.assets = Assets.load(settings.demo_page)
        self.ice = IcePolicy(
            settings.turn_urls,
            settings.stun_urls,
            settings.turn_secret_value(),
            settings.turn_ttl_s,
        )
        self.wall_clock = time.time  # TURN expiry is Unix time, unlike the loop's clock
        self.ready = False
        # Set when draining and the last open WebSocket is gone (see Connection.connection_lost).
        self.all_closed = asyncio.Event()
        self.flush_threshold = max(settings.send_buffer_bytes // 4, 4096)
        self._dirty: list[Connection] = []
        self._flush_scheduled = False
        self.pacer = self.metrics.pacing = Pacer(settings.loop_pacing_us / 1e6)
        self.metrics.readiness = lambda: self.accepting

    def _room_retired(self, room_id: str) -> None:
        self.admission.room_retired(room_id, self.loop.time())

    @property
    def accepting(self) -> bool:
        """What ``/readyz`` answers: serving (not draining) and the journal is not failing
        again and again (``Supervisor.journal_healthy``; a probe brings it back)."""
        return self.ready and self.supervisor.journal_healthy

    def mark_dirty(self, conn: Connection) -> None:
        """Coalesce writes: every dirty connection is flushed once, at the next loop turn."""
        self._dirty.append(conn)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        dirty = self._dirty
        self._dirty = []
        for conn in dirty:
            conn.flush()
        self.pacer.turn_done()  # under steady load, let the next turn find more (pacing.py)


class Server:
    """Owns the listeners and the lifecycle; ``await serve()`` until ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        *,
        journal: Journal | None = None,
        metrics: Metrics | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self.settings = settings
        # Built here, in the running loop the server will serve on (Hub needs it).
        self.hub = Hub(settings, journal=journal, metrics=metrics, tracing=tracing)
        self.port = settings.port
        self.metrics_port = settings.metrics_port
        self._listener: asyncio.Server | None = None
        self._admin: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self.certificates = (
            Certificates(settings.tls_cert_file, settings.tls_key_file) if settings.tls else None
        )

    async def start(self) -> None:
        s = self.settings
        hub = self.hub
        loop = hub.loop
        host = s.host or None
        certs = self.certificates
        try:
            self._listener = await loop.create_server(
                lambda: Connection(hub),
                host,
                s.port,
                reuse_address=True,
                backlog=4096,
                ssl=certs.listener if certs is not None else None,
            )
        except OSError as exc:
            raise ListenError(f"PORT {s.port}: {exc.strerror or exc}") from None
        for sock in self._listener.sockets:
            defer_accept(sock, s.handshake_timeout)
        self.port = self._listener.sockets[0].getsockname()[1]
        if s.metrics_port:
            registry = hub.metrics.registry()

            async def admin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await _serve_admin(reader, writer, lambda: generate_latest(registry))

            try:
                self._admin = await asyncio.start_server(admin, host, s.metrics_port)
            except OSError as exc:
                self._listener.close()
                raise ListenError(
                    f"SIGNALING_METRICS_PORT_NUMBER {s.metrics_port}: {exc.strerror or exc}"
                ) from None
            self.metrics_port = self._admin.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._sweep())
        await hub.supervisor.check_journal()
        hub.ready = True
        log.info(
            "listening on %s:%d%s (metrics %s; at most %d WebSockets)",
            s.host or "*",
            self.port,
            " with TLS" if certs is not None else "",
            self.metrics_port if s.metrics_port else "off",
            hub.admission.max_connections,
        )
        if hub.assets:
            scheme = "https" if certs is not None else "http"
            log.info("demo call page: %s://localhost:%d/ (SIGNALING_DEMO_PAGE)", scheme, self.port)
        if hub.ice.enabled:
            log.info(
                "ICE servers for v2 clients: %d TURN, %d STUN URLs (TURN credentials %ds)",
                len(s.turn_urls),
                len(s.stun_urls),
                s.turn_ttl_s,
            )

    async def _sweep(self) -> None:
        s = self.settings
        period = min(max(min(s.ping_interval, s.ping_timeout) / 4, 0.05), 5.0)
        hub = self.hub
        while True:
            await asyncio.sleep(period)
            now = hub.loop.time()
            for conn in list(hub.connections):
                conn.check(now)
            flush_faults()

    def stop(self) -> None:
        self._stop.set()

    async def serve(self) -> None:
        """Run until ``stop()`` (or SIGTERM/SIGINT when installed), then drain."""
        await self._stop.wait()
        await self.shutdown()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> None:
        """SIGHUP: reload the TLS certificate and key and the JWT keys (open connections
        are kept; files that fail to load leave the current ones in service)."""
        if self.certificates is not None:
            self.certificates.reload()
        self.hub.admission.reload_keys(self.settings)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s: draining", sig.name)
        self.stop()

    async def shutdown(self) -> None:
        """Not ready, stop accepting, close clients with 1001, wait up to the timeout."""
        hub = self.hub
        # Not ready first: the listener stays open so probes see /readyz answer 503 while
        # new WebSocket upgrades are refused (503) and existing clients are closed.
        hub.ready = False
        conns = [conn for conn in hub.connections if conn.opened]
        for conn in conns:
            conn.close(1001, "server shutting down")
        if any(c.opened for c in hub.connections):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.all_closed.wait(), self.settings.shutdown_timeout)
        forced = sum(1 for conn in hub.connections if conn.opened)
        if self._listener is not None:
            self._listener.close()
        for conn in list(hub.connections):
            conn.abort()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await hub.supervisor.close()
        await hub.journal.close()
        if self._admin is not None:
            self._admin.close()
        hub.tracing.shutdown()
        log.info(
            "shutdown complete: drained %d connections (%d forced)",
            len(conns) - forced,
            forced,
            extra={"conns": len(conns)},
        )


async def _serve_admin(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    render: Callable[[], bytes],
) -> None:
    """Minimal HTTP/1.1 for the admin port: GET /metrics, one request per connection."""
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        method, _, rest = head.decode("latin-1").partition(" ")
        path = rest.partition(" ")[0].partition("?")[0]
        if method == "GET" and path == "/metrics":
            body = render()
            status, ctype = "200 OK", CONTENT_TYPE_LATEST
        elif method == "GET" and path == "/healthz":
            body, status, ctype = b"ok\n", "200 OK", "text/plain"
        else:
            body, status, ctype = b"not found\n", "404 Not Found", "text/plain"
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
        pass
    finally:
        writer.close()


async def run(settings: Settings) -> None:
    server = Server(settings, tracing=Tracing.from_env())
    await server.start()
    gcpolicy.freeze_startup_objects()
    server.install_signal_handlers()
    with portfile.announced(settings.port_file, server.port, server.metrics_port):
        await server.serve()
