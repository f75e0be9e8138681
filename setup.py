"""Optional mypyc build of the hot path: ``SIGNALING_MYPYC=1 pip wheel --no-build-isolation .``

Without ``SIGNALING_MYPYC=1`` this is a plain pure-Python package (everything else lives
in ``pyproject.toml``). With it, the modules below are compiled to C extensions by mypyc:
the code is already ``mypy --strict`` clean, and compiled it relays a signal for a
fraction of the interpreter's cost. Build outside shared source trees into a wheel (see
``make compiled``): a ``.so`` next to its ``.py`` would shadow the pure module for every
test run in that tree.
"""

from __future__ import annotations

import os
from glob import glob

from setuptools import setup

# The modules a relayed signal passes through. Everything else (config, CLI, tracing
# set-up, admin server, load tool) stays interpreted, and so does the memory journal:
# tests and other backends subclass it, which compiled classes refuse (and it is called
# once per batch, not per message).
HOT_PATH = [
    "signaling/core/*.py",
    "signaling/journal/window.py",
    "signaling/rooms/actor.py",
    "signaling/rooms/fanout.py",
    "signaling/rooms/peer.py",
    "signaling/rooms/mailbox.py",
    "signaling/telemetry/metrics.py",
    "signaling/transport/connection.py",
    "signaling/transport/framing.py",
    "signaling/transport/http.py",
    "signaling/transport/upgrade.py",
    "signaling/transport/limits.py",
    "signaling/transport/session.py",
    "signaling/transport/requests.py",
    "signaling/transport/effects.py",
    "signaling/transport/admission.py",
]


def hot_path_modules() -> list[str]:
    found = sorted({path for pattern in HOT_PATH for path in glob(pattern)})
    return [path for path in found if not path.endswith("__init__.py")]


if os.environ.get("SIGNALING_MYPYC") == "1":
    from mypyc.build import mypycify

    setup(ext_modules=mypycify(hot_path_modules(), opt_level="3", debug_level="0"))
else:
    setup()
