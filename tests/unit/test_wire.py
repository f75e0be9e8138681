"""The wire codec: payloads forwarded byte for byte, bad input classified by code."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from websockets.frames import Frame, Opcode

from signaling.core import wire

UNITY_CREATE = (
    '{"type":"create","roomId":"","payload":{"sdp":"","sdpType":"","candidate":"",'
    '"sdpMid":"","sdpMLineIndex":-1}}'
)


@pytest.mark.parametrize(
    "payload",
    [
        '"{\\"type\\":\\"dummy\\",\\"text\\":\\"hello from B\\"}"',
        '{"z":1,"a":[1,2,{"b":null}],"m":"caf\\u00e9"}',
        '{ "spaced" : true }',
        "null",
        "-1.5e3",
        '"\\ud83d\\ude00"',
    ],
)
def test_payload_is_the_original_text(payload: str) -> None:
    msg = wire.parse(f'{{"type":"signal","payload":{payload},"roomId":"1"}}')
    assert msg.type == "signal"
    assert msg.payload == payload
    assert json.loads(wire.signal("id", payload))["payload"] == json.loads(payload)


def test_last_duplicate_key_wins_like_json_loads() -> None:
    msg = wire.parse('{"type":"signal","payload":1,"payload":{"k":2}}')
    assert msg.payload == '{"k":2}'


def test_unity_shaped_messages_parse() -> None:
    msg = wire.parse(UNITY_CREATE)
    assert msg.type == "create" and msg.fields["roomId"] == ""


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "bad_json"),
        ("{", "bad_json"),
        ('{"type":"signal"', "bad_json"),
        ('{"type":"signal",}', "bad_json"),
        ('{"type":"signal","payload":NaN}', "bad_json"),
        ('{"type":"signal","payload":Infinity}', "bad_json"),
        ('{"type":"signal"} trailing', "bad_json"),
        ('{"type":"x\\q"}', "bad_json"),
        ("[1,2]", "bad_message"),
        ('"create"', "bad_message"),
        ("{}", "bad_message"),
        ('{"type":5}', "bad_message"),
    ],
)
def test_bad_input_is_classified(text: str, code: str) -> None:
    with pytest.raises(wire.WireError) as info:
        wire.parse(text)
    assert info.value.code == code


def test_field_accessors_reject_wrong_types() -> None:
    msg = wire.parse('{"type":"join","roomId":1234,"lastSeq":true}')
    with pytest.raises(wire.WireError, match="roomId"):
        wire.require_str(msg, "roomId")
    with pytest.raises(wire.WireError, match="lastSeq"):
        wire.require_seq(msg, "lastSeq")
    assert wire.optional_str(wire.parse('{"type":"x"}'), "to") is None


def test_v1_replies_are_byte_for_byte_the_seed_shapes() -> None:
    assert wire.room_entered("room_created", "1234", "u") == (
        '{"type":"room_created","roomId":"1234","myId":"u"}'
    )
    assert wire.signal("u", '"p"') == '{"type":"signal","senderId":"u","payload":"p"}'
    assert json.loads(wire.error("room_not_found", "Room not found")) == {
        "type": "error",
        "message": "Room not found",
        "code": "room_not_found",
    }


@pytest.mark.parametrize("size", [0, 1, 125, 126, 255, 256, 300, 4097, 65535, 65536, 70000])
def test_text_frame_matches_the_websockets_encoder(size: int) -> None:
    text = "x" * size
    expected = Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert wire.text_frame(text) == expected


def test_numbers_in_a_payload_are_relayed_as_written_however_long() -> None:
    payload = '{"n":' + "7" * 5000 + ',"f":1' + "0" * 400 + 'e-400,"neg":-' + "9" * 4301 + "}"
    msg = wire.parse(f'{{"type":"signal","payload":{payload}}}')
    assert msg.payload == payload


def test_a_huge_integer_is_no_valid_sequence_number() -> None:
    msg = wire.parse('{"type":"resume","lastSeq":' + "1" * 5000 + "}")
    with pytest.raises(wire.WireError) as err:
        wire.require_seq(msg, "lastSeq")
    assert err.value.code == "bad_message"


@pytest.mark.parametrize("depth", [1000, 5000])
@pytest.mark.parametrize("where", ["payload", "top", "field"])
def test_deep_nesting_is_bad_message_with_a_clear_text(depth: int, where: str) -> None:
    deep = "[" * depth + "]" * depth
    text = {
        "payload": f'{{"type":"signal","payload":{deep}}}',
        "top": deep,
        "field": f'{{"type":"join","roomId":{deep}}}',
    }[where]
    with pytest.raises(wire.WireError) as err:
        wire.parse(text)
    assert (err.value.code, err.value.message) == ("bad_message", wire.TOO_DEEP)


def test_moderate_nesting_is_relayed() -> None:
    deep = '{"a":' * 200 + "1" + "}" * 200
    assert wire.parse(f'{{"type":"signal","payload":{deep}}}').payload == deep


@pytest.mark.parametrize("field", ["type", "roomId", "to", "peerId", "traceparent"])
@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "a\\udc00b", "\\ud83d"])
def test_lone_surrogates_are_refused_where_the_server_reads_text(field: str, escape: str) -> None:
    text = f'{{"type":"signal","payload":1,"{field}":"{escape}"}}'
    with pytest.raises(wire.WireError) as err:
        msg = wire.parse(text)
        wire.require_str(msg, field)
    assert err.value.code == "bad_message"
    if field != "type":
        with pytest.raises(wire.WireError):
            wire.optional_str(wire.parse(text), field)


def test_a_surrogate_pair_is_text_and_a_lone_one_in_a_payload_is_relayed() -> None:
    msg = wire.parse('{"type":"signal","to":"\\ud83d\\ude00","payload":"\\ud800"}')
    assert wire.require_str(msg, "to") == "\U0001f600"
    assert msg.payload == '"\\ud800"'  # opaque: forwarded as the client escaped it


@pytest.mark.parametrize(
    "text",
    ['{"type":"signal","payload":NaN}', "1" * 5000, '{"type":"signal","payload":[' + "1" * 5000],
)
def test_error_texts_do_not_describe_the_implementation(text: str) -> None:
    with pytest.raises(wire.WireError) as err:
        wire.parse(text)
    assert "digits" not in err.value.message and "Python" not in err.value.message


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    fields=st.dictionaries(st.text(), _json_values, max_size=4),
    kind=st.text(),
    ensure_ascii=st.booleans(),
    compact=st.booleans(),
)
def test_fields_are_what_json_loads_reads(
    fields: dict[str, object], kind: str, ensure_ascii: bool, compact: bool
) -> None:
    """Keys and string values take a shortcut when they hold no escape or control
    character; with or without it, the fields are exactly json.loads's."""
    text = json.dumps(
        {**fields, "type": kind},
        ensure_ascii=ensure_ascii,
        separators=(",", ":") if compact else (", ", ": "),
    )
    try:
        msg = wire.parse(text)
    except wire.WireError as exc:  # only a type that is no Unicode text is refused
        assert exc.code == "bad_message" and not wire.is_unicode(kind)
        return
    assert msg.fields == json.loads(text)
    assert msg.type == kind


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"sig\x01nal"}',
        '{"ty\x1fpe":"signal"}',
        '{"type":"signal","roomId":"12\n34"}',
        '{"type":"signal","roomId":"1234}',
        '{"type":"signal","ro',
    ],
)
def test_a_raw_control_character_or_an_open_string_is_bad_json(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)
    with pytest.raises(wire.WireError) as caught:
        wire.parse(text)
    assert caught.value.code == "bad_json"


_signal_tails = st.one_of(
    st.text(max_size=12),
    st.tuples(
        st.sampled_from(["", " ", "\n "]),
        _json_values.map(json.dumps) | st.sampled_from(["NaN", "-", '"\\q"', "[1,", '"\\ud800"']),
        st.sampled_from(
            ["}", " }", "", "}x", "} ", ",}", ',"to":"b"}', ',"payload":1}', ',"type":5}', ","]
        ),
    ).map("".join),
)


@given(tail=_signal_tails)
def test_a_message_that_begins_like_a_signal_reads_as_any_other(tail: str) -> None:
    """``parse`` takes ``SIGNAL_HEAD`` whole and reads on from the payload's value. The
    same text behind a leading space takes the general walk from its first character:
    both must give the same message, or refuse it with the same code."""
    text = wire.SIGNAL_HEAD + tail
    assert (" " + text)[:1] != wire.SIGNAL_HEAD[:1]
    try:
        general = wire.parse(" " + text)
    except wire.WireError as exc:
        with pytest.raises(wire.WireError) as caught:
            wire.parse(text)
        assert caught.value.code == exc.code
        return
    msg = wire.parse(text)
    assert (msg.type, msg.fields, msg.payload) == (general.type, general.fields, general.payload)
    assert msg.fields == json.loads(text)


@pytest.mark.parametrize(
    ("text", "payload", "to"),
    [
        ('{"type":"signal","payload":{"a":1}}', '{"a":1}', None),
        ('{"type":"signal","payload": "x" }', '"x"', None),
        ('{"type":"signal","payload":{"a":1},"to":"b"}', '{"a":1}', "b"),
        ('{"type":"signal","payload":1,"payload":[2]}', "[2]", None),
    ],
)
def test_signal_shapes_read_from_the_payload_on(text: str, payload: str, to: str | None) -> None:
    msg = wire.parse(text)
    assert (msg.type, msg.payload, msg.fields.get("to")) == ("signal", payload, to)


@pytest.mark.parametrize(
    "text",
    [
        '{"type":"signal","payload":',
        '{"type":"signal","payload":}',
        '{"type":"signal","payload":{"a":1}',
        '{"type":"signal","payload":{"a":1}}}',
        '{"type":"signal","payload":NaN}',
        '{"type":"signal","payload":1,"type":5}',
    ],
)
def test_broken_signals_are_refused_as_before(text: str) -> None:
    with pytest.raises(wire.WireError) as fast:
        wire.parse(text)
    with pytest.raises(wire.WireError) as general:
        wire.parse(" " + text)
    assert fast.value.code == general.value.code
