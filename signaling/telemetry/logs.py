"""Structured logging, text or JSON, with room and peer ids as fields.

Payloads never reach a log call anywhere in the code: SDP and ICE candidates carry
IP addresses. Context goes in ``extra={"room": ..., "peer": ...}``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_CONTEXT = ("room", "peer", "code", "conns", "reason")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT:
            value = getattr(record, key, None)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ctx = " ".join(
            f"{k}={getattr(record, k)}" for k in _CONTEXT if getattr(record, k, None) is not None
        )
        if ctx:
            head, sep, rest = line.partition("\n")
            line = f"{head} {ctx}{sep}{rest}"
        return line


def setup(fmt: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The websockets library logs every handshake failure at INFO; ours are enough.
    logging.getLogger("websockets").setLevel(logging.WARNING)
