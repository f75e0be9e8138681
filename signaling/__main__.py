"""``python -m signaling``: parse settings (exit 2 on a bad value), log, serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from signaling import config
from signaling.portfile import PortFileError
from signaling.telemetry import logs
from signaling.transport.admission import preflight
from signaling.transport.server import ListenError, run


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = config.load(argv)
        preflight(settings)
    except config.ConfigError as exc:
        print(f"signaling: invalid configuration: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_format, settings.log_level)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    logging.getLogger("signaling").debug("event loop: %s", "uvloop" if loop_factory else "asyncio")
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        try:
            runner.run(run(settings))
        except ListenError as exc:  # a port in use is the user's to fix, not a traceback
            print(f"signaling: cannot listen: {exc}", file=sys.stderr)
            return 2
        except PortFileError as exc:
            print(f"signaling: cannot write the port file: {exc}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
