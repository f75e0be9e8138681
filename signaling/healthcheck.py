"""``python -m signaling.healthcheck``: the container's HEALTHCHECK, with or without TLS.

Reads the same environment as the server (``PORT``, ``SIGNALING_TLS_CERT_FILE``/``_KEY_FILE``)
and asks the server's own port for ``/healthz`` (liveness, not readiness: ``/readyz``
turns 503 while draining, which must not mark the container unhealthy). With TLS on it
speaks https to 127.0.0.1 without verifying the certificate: it checks that this
process answers, not who it is, and the certificate names the public host, not
127.0.0.1. Exit status 0 when healthy, 1 otherwise.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.request


def main() -> int:
    port = os.environ.get("PORT", "8080").strip() or "8080"
    tls = bool(
        os.environ.get("SIGNALING_TLS_CERT_FILE") and os.environ.get("SIGNALING_TLS_KEY_FILE")
    )
    context: ssl.SSLContext | None = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return 0 if resp.status == 200 else 1
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
