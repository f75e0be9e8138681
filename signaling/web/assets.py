"""Static files on the public port: the browser client (``/client/*.js``) and the demo page.

Why the signaling server serves them: a web developer can ``import`` the client from the
server it talks to, with no bundler and no version skew, and ``make run`` gives a page to
open. The files are read once at start-up (they are package data, so the wheel and the
container image carry them) and their headers prepared once; serving is a dictionary
lookup where the connection reads HTTP requests, before any WebSocket upgrade.
``SIGNALING_DEMO_PAGE=false`` serves none of them.
"""

from __future__ import annotations

import email.utils
from importlib import resources

JS = "text/javascript; charset=utf-8"
# path -> (file in static/, content type)
ROUTES: dict[str, tuple[str, str]] = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/demo.js": ("demo.js", JS),
    "/client/signaling.js": ("signaling.js", JS),
    "/client/mesh.js": ("mesh.js", JS),
    "/client/signaling.d.ts": ("signaling.d.ts", "text/plain; charset=utf-8"),
}
# The demo page runs only its own scripts and talks only to this origin.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; img-src data:; "
    "connect-src 'self'; media-src 'self' blob: mediastream:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _head_lines(body: bytes, content_type: str) -> str:
    lines = [
        f"Content-Length: {len(body)}",
        f"Content-Type: {content_type}",
        "Cache-Control: no-cache",
        "X-Content-Type-Options: nosniff",
        "Referrer-Policy: no-referrer",
    ]
    if content_type.startswith("text/html"):
        lines.append(f"Content-Security-Policy: {PAGE_POLICY}")
    else:
        lines.append("Access-Control-Allow-Origin: *")  # pages elsewhere may import the client
    return "\r\n".join(lines)


class Assets:
    """Bodies and header lines by request path (none when the demo page is off)."""

    def __init__(self, files: dict[str, tuple[bytes, str]]) -> None:
        self._files = files

    @classmethod
    def load(cls, enabled: bool) -> Assets:
        if not enabled:
            return cls({})
        static = resources.files("signaling.web") / "static"
        return cls(
            {
                path: (body, _head_lines(body, content_type))
                for path, (name, content_type) in ROUTES.items()
                for body in [(static / name).read_bytes()]
            }
        )

    def response(self, path: str, head_only: bool, keep_alive: bool) -> bytes | None:
        """The complete HTTP/1.1 response to a GET (or HEAD) of ``path``, if it is ours."""
        found = self._files.get(path)
        if found is None:
            return None
        body, lines = found
        head = (
            f"HTTP/1.1 200 OK\r\nDate: {email.utils.formatdate(usegmt=True)}\r\n{lines}\r\n"
            f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
        ).encode()
        return head if head_only else head + body

    def __bool__(self) -> bool:
        return bool(self._files)
