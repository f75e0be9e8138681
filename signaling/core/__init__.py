"""The pure core: commands, events, the room's decide/evolve, delivery rules, the wire codec.

Nothing here does I/O, reads a clock or imports another ``signaling`` package.

The four classes built for every relayed signal (``wire.Inbound``, ``commands.Signal``,
``events.SignalRelayed``, ``room.RoomState``) are frozen dataclasses with a hand-written
``__init__``. Compiled with mypyc (``make compiled``), a class keeps native code only for
the methods in its source: the ``__init__`` that ``@dataclass`` generates at import time
runs in the interpreter and sets each field with a generic ``object.__setattr__`` call,
about 500 ns for five fields, where mypyc turns the written-out
``object.__setattr__(self, "name", value)`` into a native slot store (about 20 ns). In
callgrind, those four constructors were 38% of the instructions of a relayed signal
(29k of 77k). The classes stay frozen (assignment raises ``FrozenInstanceError``), and
``@dataclass`` still generates ``__eq__``, ``__hash__``, ``__repr__`` and
``__match_args__``; ``tests/unit/test_core_constructors.py`` checks that each written
``__init__`` takes exactly the dataclass's fields, in order, with the same defaults.
"""
