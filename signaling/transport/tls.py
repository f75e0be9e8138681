"""TLS at the server: ``wss://`` without a proxy, certificates reloaded without a restart.

The listener keeps one ``SSLContext`` for its whole life; its SNI callback hands every
new handshake the *current* context. ``reload()`` (on SIGHUP) builds a fresh context
from the files and swaps it in only if it loaded cleanly, so a half-written or
mismatched certificate keeps the old one serving, and established connections keep the
session they negotiated: nothing is dropped. Renewal tools (cert-manager, certbot) can
therefore replace the files and send SIGHUP.

TLS 1.2 is the minimum; the cipher choice is OpenSSL's secure default.
"""

from __future__ import annotations

import logging
import ssl

log = logging.getLogger("signaling.transport.tls")


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context with TLS >= 1.2 and the given certificate chain and key."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_COMPRESSION
    ctx.load_cert_chain(cert_file, key_file)
    # HTTP/1.1 only: the WebSocket upgrade and the health probes both speak it.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


class Certificates:
    """The listener's TLS context, reloadable from the same files."""

    def __init__(self, cert_file: str, key_file: str) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.current = server_context(cert_file, key_file)
        self.reloads = 0
        # The listener's context: loaded too, so a client without SNI (the callback
        # still runs, with server_name None) is served; then always switched.
        self.listener = server_context(cert_file, key_file)
        self.listener.sni_callback = self._pick

    def _pick(self, sslobj: ssl.SSLObject, _server_name: str | None, _ctx: ssl.SSLContext) -> None:
        sslobj.context = self.current

    def reload(self) -> bool:
        """Load the files again; keep the old context on failure. True when swapped."""
        try:
            fresh = server_context(self.cert_file, self.key_file)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("TLS reload failed, keeping the current certificate: %s", exc)
            return False
        self.current = fresh
        self.reloads += 1
        log.info("TLS certificate reloaded")
        return True
