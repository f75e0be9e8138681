"""The JSON wire format, sans-I/O: client text -> ``Inbound``, events -> server text and frames.

Why a hand-rolled object walker instead of ``json.loads``: the ``payload`` of a signal is
opaque and must reach recipients exactly as sent (same string escapes, same key order),
without paying for a decode/encode round trip. The walker uses the C scanner of the
standard ``json`` module for every value, so the payload is still validated as JSON, but
the forwarded bytes are a slice of the original text.

Server-to-client frames are unmasked (RFC 6455 5.1), so one encoded frame serves every
recipient of an event: ``text_frame`` builds it once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, cast

from signaling.core.errors import ErrorCode

V2_SUBPROTOCOL: Final = "signaling.v2"
MESSAGE_TYPES: Final = ("create", "join", "signal", "leave", "resume")
V2_ONLY_TYPES: Final = frozenset({"leave", "resume"})


class _NotJson(ValueError):
    """Valid for Python's ``json``, not for JSON: NaN and the infinities."""


def _reject_constant(name: str) -> Any:
    raise _NotJson(f"{name} is not JSON")


def _any_int(digits: str) -> int | float:
    """Integers of any length, as JSON allows; past Python's int-from-string limit (4300
    digits) the value is a float (never an ``int``, so no integer field accepts it). A
    payload's numbers are never converted at all: it is forwarded as the client wrote it."""
    return int(digits) if len(digits) <= 4000 else float(digits)


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
# The standard library's C scanner, untyped in typeshed: (text, index) -> (value, end).
_scan_once = cast(Callable[[str, int], tuple[Any, int]], _decoder.scan_once)  # type: ignore[attr-defined]
# The same with a Python callback per integer: only for messages the fast one refused.
_lenient = json.JSONDecoder(parse_constant=_reject_constant, parse_int=_any_int)
_scan_lenient = cast(Callable[[str, int], tuple[Any, int]], _lenient.scan_once)  # type: ignore[attr-defined]
TOO_DEEP: Final = "JSON nested too deeply"
scanstring = cast(Callable[[str, int, bool], tuple[str, int]], json.decoder.scanstring)  # type: ignore[attr-defined]
_WS = frozenset(" \t\n\r")  # "" is not in it: the end of the text is no whitespace
# Matches at any index (possibly empty), so ``.end()`` is always there.
_ws_end = cast(Callable[[str, int], "re.Match[str]"], re.compile(r"[ \t\n\r]*").match)


class WireError(Exception):
    """A client frame that cannot be served; becomes an ``error`` reply, never a crash."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Inbound:
    """A decoded client message. ``payload`` is the raw JSON text of the payload value."""

    type: str
    fields: dict[str, Any]
    payload: str | None


def _bad_json(detail: str) -> WireError:
    return WireError("bad_json", f"Invalid JSON: {detail}")


def is_unicode(value: str) -> bool:
    """False for text with a lone surrogate (a JSON escape such as ``"\\ud800"``): it is
    not Unicode, cannot be encoded as UTF-8 and is refused wherever the server reads it."""
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def parse(text: str) -> Inbound:
    """Decode one client text message, keeping the payload's raw text span.

    Whitespace is skipped with the regex only where there is some: compact JSON (what
    every client library sends) pays a one-character test per position instead.
    """
    ws, ws_end, scan = _WS, _ws_end, _scan_once
    i = 0
    ch = text[:1]
    if ch in ws:
        i = ws_end(text, 0).end()
        ch = text[i : i + 1]
    if ch != "{":
        try:
            _lenient.decode(text)
        except RecursionError:
            raise WireError("bad_message", TOO_DEEP) from None
        except ValueError as exc:
            raise _bad_json(str(exc)) from None
        raise WireError("bad_message", "A message must be a JSON object")
    fields: dict[str, Any] = {}
    p_start = p_end = -1
    i += 1
    ch = text[i : i + 1]
    if ch in ws:
        i = ws_end(text, i).end()
        ch = text[i : i + 1]
    try:
        if ch == "}":
            i += 1
        else:
            while True:
                if ch != '"':
                    raise _bad_json(f"expected a key at {i}")
                key, i = scanstring(text, i + 1, True)
                ch = text[i : i + 1]
                if ch in ws:
                    i = ws_end(text, i).end()
                    ch = text[i : i + 1]
                if ch != ":":
                    raise _bad_json(f"expected ':' at {i}")
                i += 1
                if text[i : i + 1] in ws:
                    i = ws_end(text, i).end()
                try:
                    value, end = scan(text, i)
                except StopIteration:
                    raise _bad_json(f"expected a value at {i}") from None
                except ValueError as exc:  # (free when nothing is raised)
                    if isinstance(exc, (json.JSONDecodeError, _NotJson)):
                        raise
                    value, end = _scan_lenient(text, i)  # an integer past 4300 digits
                if key == "payload":
                    p_start, p_end = i, end
                fields[key] = value
                i = end
                ch = text[i : i + 1]
                if ch in ws:
                    i = ws_end(text, i).end()
                    ch = text[i : i + 1]
                if ch == ",":
                    i += 1
                    ch = text[i : i + 1]
                    if ch in ws:
                        i = ws_end(text, i).end()
                        ch = text[i : i + 1]
                elif ch == "}":
                    i += 1
                    break
                else:
                    raise _bad_json(f"expected ',' or '}}' at {i}")
    except ValueError as exc:  # JSONDecodeError, a bad escape, NaN/Infinity
        if isinstance(exc, WireError):
            raise
        raise _bad_json(str(exc)) from None
    except RecursionError:  # the C scanner recurses per level: about 900 levels deep
        raise WireError("bad_message", TOO_DEEP) from None
    if i != len(text) and ws_end(text, i).end() != len(text):
        raise _bad_json(f"extra data at {i}")
    kind = fields.get("type")
    if not isinstance(kind, str) or not (kind.isascii() or is_unicode(kind)):
        raise WireError("bad_message", "Field 'type' must be a string")
    payload = text[p_start:p_end] if p_start >= 0 else None
    return Inbound(kind, fields, payload)


def require_str(msg: Inbound, name: str) -> str:
    value = msg.fields.get(name)
    if not isinstance(value, str) or not (value.isascii() or is_unicode(value)):
        raise WireError("bad_message", f"Field '{name}' must be a string of Unicode text")
    return value


def optional_str(msg: Inbound, name: str) -> str | None:
    value = msg.fields.get(name)
    if value is not None and (
        not isinstance(value, str) or not (value.isascii() or is_unicode(value))
    ):
        raise WireError("bad_message", f"Field '{name}' must be a string of Unicode text")
    return value


def require_seq(msg: Inbound, name: str) -> int:
    value = msg.fields.get(name)
    if type(value) is not int or value < 0:
        raise WireError("bad_message", f"Field '{name}' must be a non-negative integer")
    return value


# ---- server -> client text. Ids are server-generated (digits, uuids): safe to splice. ----


def room_entered(kind: str, room_id: str, my_id: str) -> str:
    """``room_created`` / ``room_joined`` exactly as the seed sends them (v1)."""
    return f'{{"type":"{kind}","roomId":"{room_id}","myId":"{my_id}"}}'


def room_entered_v2(
    kind: str, room_id: str, my_id: str, peers: list[str], seq: int, token: str | None
) -> str:
    peer_list = json.dumps(peers)
    body = (
        f'{{"type":"{kind}","roomId":"{room_id}","myId":"{my_id}","peers":{peer_list},"seq":{seq}'
    )
    if token is not None:
        body += f',"resumeToken":{json.dumps(token)}'
    return body + "}"


def signal(sender_id: str, payload: str) -> str:
    return f'{{"type":"signal","senderId":"{sender_id}","payload":{payload}}}'


def signal_v2(sender_id: str, payload: str, seq: int, traceparent: str | None) -> str:
    head = f'{{"type":"signal","senderId":"{sender_id}","payload":{payload},"seq":{seq}'
    if traceparent is not None:
        return f'{head},"traceparent":"{traceparent}"}}'
    return head + "}"


def peer_joined(peer_id: str, seq: int) -> str:
    return f'{{"type":"peer_joined","peerId":"{peer_id}","seq":{seq}}}'


def peer_left(peer_id: str, reason: str, seq: int) -> str:
    return f'{{"type":"peer_left","peerId":"{peer_id}","reason":"{reason}","seq":{seq}}}'


def left(room_id: str) -> str:
    return f'{{"type":"left","roomId":"{room_id}"}}'


def room_expired(room_id: str) -> str:
    return f'{{"type":"room_expired","roomId":"{room_id}"}}'


def error(code: ErrorCode, message: str, *, retry_after_ms: int | None = None) -> str:
    body: dict[str, Any] = {"type": "error", "message": message, "code": code}
    if retry_after_ms is not None:
        body["retryAfterMs"] = retry_after_ms
    return json.dumps(body, separators=(",", ":"))


def text_frame(text: str) -> bytes:
    """One unmasked, final text frame (RFC 6455 5.2): built once, written to many sockets."""
    data = text.encode()
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return bytes((0x81, 126, n >> 8, n & 0xFF)) + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data
