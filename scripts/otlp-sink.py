"""A loopback OTLP/HTTP receiver that accepts and counts spans.

Usage: `python scripts/otlp-sink.py [PORT]`.

For benchmarking the tracing path end to end (BatchSpanProcessor, protobuf encoding,
HTTP export) without a collector. It answers every POST /v1/traces with 200 and an empty
ExportTraceServiceResponse and prints a running count of requests and bytes on exit.
"""

from __future__ import annotations

import http.server
import signal
import sys
import threading


class Sink(http.server.BaseHTTPRequestHandler):
    requests = 0
    received = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        with Sink.lock:
            Sink.requests += 1
            Sink.received += length
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 4318
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Sink)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # background jobs may have SIGINT ignored
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        print(f"otlp-sink: {Sink.requests} exports, {Sink.received} bytes", flush=True)


if __name__ == "__main__":
    main()
