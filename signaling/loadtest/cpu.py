"""CPU time of a local process (and its waited-for children), from ``/proc``."""

from __future__ import annotations

import os


def process_cpu_seconds(pid: int) -> float:
    """utime + stime (+ children's) of ``pid`` in seconds; Linux only."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        stat = f.read()
    # Field 2 (comm) may contain spaces and parentheses: split after its closing one.
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
