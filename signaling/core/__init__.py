"""The pure core: commands, events, the room's decide/evolve, delivery rules, the wire codec.

Nothing here does I/O, reads a clock or imports another ``signaling`` package."""
