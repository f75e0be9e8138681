"""The hot-path core classes whose ``__init__`` is written out (see ``signaling.core``)
take exactly their dataclass fields, in order, with the same defaults, and stay frozen:
a field added to the class but not to its ``__init__`` fails here, not in production."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from signaling.core import commands, events, room, wire

# A distinct, well-typed value per field, in field order (compiled classes check types).
SAMPLES: dict[type[Any], tuple[Any, ...]] = {
    wire.Inbound: ("signal", {"type": "signal"}, '{"a":1}'),
    commands.Signal: ("peer-a", '{"a":1}', "peer-b", 12.5, "00-trace"),
    events.SignalRelayed: (7, "peer-a", '{"a":1}', "peer-b", 12.5),
    room.RoomState: (
        "1234",
        room.RoomPolicy(timeout=9.0, max_members=3),
        5,
        {"peer-a": room.Member("peer-a", 2, "digest")},
        12.5,
        True,
    ),
}
WRITTEN_OUT = list(SAMPLES)


def _default(f: dataclasses.Field[Any]) -> object:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return inspect.Parameter.empty


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_written_init_takes_the_fields_in_order(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    assert len(SAMPLES[cls]) == len(fields), "a new field needs a sample here"
    # Each field gets a distinct value; the instance must hold each under its own name.
    values = {f.name: v for f, v in zip(fields, SAMPLES[cls], strict=True)}
    made = cls(*values.values())
    assert {f.name: getattr(made, f.name) for f in fields} == values
    assert cls(**values) == made
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(made, fields[0].name, None)


@pytest.mark.parametrize("cls", WRITTEN_OUT, ids=lambda cls: cls.__name__)
def test_written_init_keeps_the_defaults(cls: type[Any]) -> None:
    fields = dataclasses.fields(cls)
    required = [f for f in fields if _default(f) is inspect.Parameter.empty]
    made = cls(*SAMPLES[cls][: len(required)])
    for f in fields[len(required) :]:
        assert getattr(made, f.name) == _default(f), f.name
    if cls is room.RoomState:  # the default_factory: a fresh dict each time
        assert made.members is not cls(*SAMPLES[cls][: len(required)]).members
    if inspect.isfunction(cls.__init__):  # pure Python: the signature is visible too
        params = list(inspect.signature(cls.__init__).parameters)[1:]
        assert params == [f.name for f in fields]
