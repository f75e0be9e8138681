"""The package layout's rules, read from the imports (like the docs drift test).

``core`` is pure and reaches nothing else; ``journal`` never reaches the room runtime or
sockets; ``rooms`` sees connections only through the ``Peer`` protocol, never
``transport``; ``telemetry`` knows no rooms, journals or sockets.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "signaling"

FORBIDDEN: dict[str, set[str]] = {
    "core": {"rooms", "journal", "transport", "telemetry", "config", "web", "loadtest"},
    "journal": {"rooms", "transport", "telemetry", "web", "loadtest"},
    "rooms": {"transport", "web", "loadtest"},
    "telemetry": {"rooms", "journal", "transport", "web", "loadtest"},
}
# The core must stay free of I/O, clocks and concurrency, whatever it imports.
CORE_FORBIDDEN_STDLIB = {"asyncio", "socket", "time", "os", "threading", "selectors", "random"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def layer_of(name: str) -> str | None:
    parts = name.split(".")
    if parts[0] != "signaling" or len(parts) < 2:
        return None
    return parts[1].removesuffix(".py")


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_it_may(layer: str) -> None:
    folder = PACKAGE / layer
    assert folder.is_dir(), f"signaling/{layer}/ is missing"
    modules = sorted(folder.rglob("*.py"))
    assert modules
    bad = [
        f"{path.relative_to(PACKAGE.parent)} imports {name}"
        for path in modules
        for name in imports_of(path)
        if layer_of(name) in FORBIDDEN[layer]
    ]
    assert not bad, "\n".join(bad)


def test_core_does_no_io() -> None:
    bad = [
        f"{path.name} imports {name}"
        for path in sorted((PACKAGE / "core").rglob("*.py"))
        for name in imports_of(path)
        if name.split(".")[0] in CORE_FORBIDDEN_STDLIB
    ]
    assert not bad, "\n".join(bad)


def test_the_checker_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The rule test itself can fail: a module importing ``transport`` is caught."""
    module = tmp_path / "bad.py"
    module.write_text("from signaling.transport.connection import Connection\nimport asyncio\n")
    found = imports_of(module)
    assert "transport" in {layer_of(name) for name in found}
    assert "asyncio" in found


# The session layer decides without doing: no socket, clock, task, thread or journal, and
# rooms only through ``rooms.peer`` (handles and the Peer protocol), never their runtime.
SANS_IO_SESSION = ("session.py", "requests.py", "effects.py", "limits.py")
SESSION_FORBIDDEN = CORE_FORBIDDEN_STDLIB | {"websockets"}


def forbidden_for_the_session(name: str) -> bool:
    parts = name.split(".")
    if parts[0] in SESSION_FORBIDDEN or parts[:2] == ["signaling", "journal"]:
        return True
    return parts[:2] == ["signaling", "rooms"] and parts[2:3] != ["peer"]


@pytest.mark.parametrize("name", SANS_IO_SESSION)
def test_the_session_layer_does_no_io(name: str) -> None:
    bad = sorted(filter(forbidden_for_the_session, imports_of(PACKAGE / "transport" / name)))
    assert not bad, f"transport/{name} imports {bad}"


def test_the_session_rule_can_fail() -> None:
    assert forbidden_for_the_session("time")
    assert forbidden_for_the_session("signaling.rooms.supervisor")
    assert not forbidden_for_the_session("signaling.rooms.peer")
