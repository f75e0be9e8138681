"""``python -m signaling.loadtest``: drive any signaling deployment and check it.

R rooms of P peers relay signals at a fixed rate or in a closed loop; the report gives
delivered messages per second, latency percentiles and whether every signal reached every
other peer of its room exactly once. Idle connections (``--idle``) held beside the
relaying rooms (``--hold``) show what a deployment carries at scale. Operators use it to
size a cluster, ``make bench`` uses it against a local server, and the soak and scale
tests in ``make test`` reuse it.

Why its own WebSocket client (``frames`` + ``peer``) instead of the ``websockets``
client: one Python process has to keep a server on another core busy. A coroutine per
connection and per send costs more than the server spends relaying the message; an
``asyncio.Protocol`` per socket that parses frames in ``data_received`` and writes once
per event-loop turn does not.
"""
