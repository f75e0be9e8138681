"""Profile the server under load: `python scripts/profile-server.py PORT SECONDS OUT`.

cProfile around the real event loop (uvloop), stopped after SECONDS by the server's own
drain path, so the profile covers exactly the serving code. Drive load from another
process (for example ../shared/bench's loadgen) while it runs.
"""

from __future__ import annotations

import asyncio
import cProfile
import pstats
import sys

import uvloop

from signaling.config import Settings
from signaling.transport.server import Server


async def serve(port: int, seconds: float) -> None:
    server = Server(Settings(port=port, host="127.0.0.1", metrics_port=0))
    await server.start()
    asyncio.get_running_loop().call_later(seconds, server.stop)
    await server.serve()


def main() -> None:
    port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    profiler = cProfile.Profile()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        profiler.enable()
        runner.run(serve(port, seconds))
        profiler.disable()
    profiler.dump_stats(out)
    pstats.Stats(out).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
