"""signaling: a WebRTC signaling server built as event-sourced room actors.

Layers, from the inside out (see docs/architecture.md):

* pure core, no I/O: ``commands``, ``events``, ``room`` (decide/evolve), ``delivery``
  (who receives which frame), ``wire`` (JSON codec, sans-I/O);
* shell: ``journal``, ``mailbox``, ``actor``, ``supervisor``, ``connection``, ``server``,
  plus ``metrics``, ``tracing`` and ``logs``.
"""

__version__ = "0.1.0"
