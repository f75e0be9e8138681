"""Structured logging, text or JSON, with room and peer ids as fields.

Payloads never reach a log call anywhere in the code: SDP and ICE candidates carry
IP addresses. Context goes in ``extra={"room": ..., "peer": ...}``.

What clients do wrong goes through ``FaultLog``: one line per cause per interval, with
the number of occurrences it stands for, so that no client (or botnet) can turn its
mistakes into a flood of log lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any, Final

_CONTEXT = ("room", "peer", "code", "conns", "reason", "cause", "count")

FAULT_INTERVAL: Final = 60.0
"""Seconds between two log lines of the same client-fault cause."""
_MAX_CAUSES: Final = 256
_fault_logs: weakref.WeakSet[FaultLog] = weakref.WeakSet()


def flush_faults() -> None:
    """``FaultLog.flush`` for every fault log (the server's sweep calls it)."""
    for faults in list(_fault_logs):
        faults.flush()


class FaultLog:
    """Client faults, logged at most once per ``interval`` per cause, with a count.

    The first occurrence of a cause is logged at once (``count=1``); later ones within
    the interval are only counted, and reported by the next line of that cause (on its
    next occurrence after the interval, or by ``flush``, which the server's periodic
    sweep calls). Causes are names written in the code, never client text; their
    number is capped all the same.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = FAULT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.clock = clock
        # cause -> [time of its last line, occurrences since, level, message]
        self._causes: dict[str, list[Any]] = {}
        _fault_logs.add(self)

    def fault(
        self,
        cause: str,
        msg: str,
        *args: object,
        level: int = logging.INFO,
        exc_info: bool = False,
        **extra: object,
    ) -> bool:
        """Record one occurrence; returns whether a line was logged for it."""
        now = self.clock()
        entry = self._causes.get(cause)
        if entry is None:
            if len(self._causes) >= _MAX_CAUSES:
                cause = "other"
                entry = self._causes.get(cause)
            if entry is None:
                self._causes[cause] = [now, 0, level, msg % args if args else msg]
                self._emit(level, cause, 1, msg, args, exc_info, extra)
                return True
        if now - entry[0] >= self.interval:
            count = entry[1] + 1
            entry[0], entry[1] = now, 0
            self._emit(level, cause, count, msg, args, exc_info, extra)
            return True
        entry[1] += 1
        return False

    def flush(self) -> None:
        """Report the counted occurrences of causes whose interval has passed."""
        now = self.clock()
        for cause, entry in self._causes.items():
            if entry[1] and now - entry[0] >= self.interval:
                count, entry[0], entry[1] = entry[1], now, 0
                self._emit(entry[2], cause, count, entry[3], (), False, {})

    def _emit(
        self,
        level: int,
        cause: str,
        count: int,
        msg: str,
        args: tuple[object, ...],
        exc_info: bool,
        extra: dict[str, object],
    ) -> None:
        if count > 1:
            msg = f"{msg} ({count} times since the last report)"
        self.logger.log(
            level, msg, *args, exc_info=exc_info, extra={**extra, "cause": cause, "count": count}
        )


class FaultAdapter(logging.LoggerAdapter[logging.Logger]):
    """A library's logger (websockets'): its warnings and errors, which client bytes can
    provoke, go through a ``FaultLog``, the cause being the library's message format."""

    def __init__(self, faults: FaultLog) -> None:
        super().__init__(faults.logger, {})
        self.faults = faults

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING and self.isEnabledFor(level):
            text = str(msg)
            exc_info = bool(kwargs.get("exc_info"))
            self.faults.fault(text[:60], text, *args, level=level, exc_info=exc_info)
        else:
            super().log(level, msg, *args, **kwargs)


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
