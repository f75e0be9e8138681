"""Protocol error codes: the closed set a client can receive in ``{"type":"error"}``.

Kept closed (a ``Literal``) so metrics labelled by code stay bounded and the docs, the
dashboard and the code cannot drift apart.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

ErrorCode = Literal[
    "bad_json",
    "bad_message",
    "unknown_type",
    "not_in_room",
    "room_not_found",
    "rooms_exhausted",
    "room_full",
    "already_in_room",
    "peer_not_found",
    "resume_failed",
    "overloaded",
    "unavailable",
    "rate_limited",
    "unauthorized",
    "internal",
]

ERROR_CODES: Final[tuple[ErrorCode, ...]] = get_args(ErrorCode)
