"""Token authentication: a JWT verified with PyJWT, and what it grants.

Off unless a key source is configured (the seed protocol has no authentication). With a
key source every WebSocket handshake must carry a valid token:

- ``Authorization: Bearer <jwt>`` (native clients, the Unity client, proxies);
- ``?token=<jwt>`` in the URL (browsers cannot set headers on a WebSocket);
- a ``bearer.<jwt>`` entry in the subprotocol list (browsers, keeping the token out of
  URLs and access logs). The server never selects that entry as the subprotocol.

Keys: an HS256 secret, a PEM public key (RSA -> RS256, EC P-256 -> ES256) or a JWKS file
(keys chosen by ``kid``). The algorithm is fixed by the key, never taken from the token
(no ``alg: none``, no HS256-with-a-public-key confusion). ``exp`` is required and is
enforced for the life of the connection, not only at the handshake.

Claims: ``room`` restricts the holder to that one room (join and resume only; creating
a room is then denied unless ``create`` is true); ``create: false`` denies creating
rooms. Nothing here logs a token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

SUBPROTOCOL_PREFIX = "bearer."


class AuthError(Exception):
    """The token is missing or invalid; ``reason`` is safe to show and log (no token)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Grant:
    """What a verified token allows. ``expires`` is a Unix time (seconds)."""

    subject: str | None
    room: str | None
    may_create: bool
    expires: float

    def may_enter(self, room_id: str) -> bool:
        return self.room is None or self.room == room_id


def token_from(
    headers: Mapping[str, str] | Sequence[tuple[str, str]],
    path: str,
    subprotocols: Sequence[str],
) -> str | None:
    """The token from the Authorization header, the ``token`` query parameter or the
    subprotocol list, in that order; None when there is none."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in items:
        if name.lower() == "authorization":
            scheme, _, credentials = value.strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query = path.partition("?")[2]
    if query:
        values = parse_qs(query).get("token")
        if values and values[0]:
            return values[0]
    for proto in subprotocols:
        if proto.startswith(SUBPROTOCOL_PREFIX) and len(proto) > len(SUBPROTOCOL_PREFIX):
            return proto[len(SUBPROTOCOL_PREFIX) :]
    return None


def _algorithm_for(key: Any) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name != "secp256r1":
            raise ValueError("only P-256 EC keys (ES256) are supported")
        return "ES256"
    raise ValueError("the public key must be RSA (RS256) or EC P-256 (ES256)")


class Authenticator:
    """Verifies tokens against one key source; ``verify`` returns a ``Grant``."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        public_key_pem: bytes | None = None,
        jwks: Mapping[str, Any] | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 0.0,
    ) -> None:
        self.audience = audience or None
        self.issuer = issuer or None
        self.leeway = leeway
        self._static: list[tuple[Any, str]] = []  # (key, algorithm) tried in order
        self._by_kid: dict[str, tuple[Any, str]] = {}
        if secret:
            if len(secret.encode()) < 32:
                raise ValueError("the HS256 secret must be at least 32 bytes")
            self._static.append((secret, "HS256"))
        if public_key_pem:
            key = load_pem_public_key(public_key_pem)
            self._static.append((key, _algorithm_for(key)))
        if jwks is not None:
            keyset = jwt.PyJWKSet.from_dict(dict(jwks))
            for k in keyset.keys:
                alg = k.algorithm_name
                if alg not in ("RS256", "ES256", "HS256"):
                    continue
                entry = (k.key, alg)
                if k.key_id:
                    self._by_kid[k.key_id] = entry
                else:
                    self._static.append(entry)
        if not self._static and not self._by_kid:
            raise ValueError("no usable key (secret, public key or JWKS)")

    @classmethod
    def from_files(
        cls,
        *,
        secret: str = "",
        public_key_file: str = "",
        jwks_file: str = "",
        audience: str = "",
        issuer: str = "",
    ) -> Authenticator | None:
        """None when no key source is configured (authentication off)."""
        if not (secret or public_key_file or jwks_file):
            return None
        pem = Path(public_key_file).read_bytes() if public_key_file else None
        jwks = json.loads(Path(jwks_file).read_text()) if jwks_file else None
        return cls(
            secret=secret or None,
            public_key_pem=pem,
            jwks=jwks,
            audience=audience,
            issuer=issuer,
        )

    def _candidates(self, token: str) -> list[tuple[Any, str]]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise AuthError("malformed token") from None
        kid = header.get("kid")
        if isinstance(kid, str) and kid in self._by_kid:
            return [self._by_kid[kid]]
        alg = header.get("alg")
        keys = [entry for entry in self._static if entry[1] == alg]
        if not keys:
            raise AuthError("no key for this token")
        return keys

    def verify(self, token: str, now: float) -> Grant:
        """Check signature, ``exp`` (required), ``nbf``, ``aud`` and ``iss`` at Unix time
        ``now``; raise AuthError."""
        claims: dict[str, Any] | None = None
        failure = "invalid token"
        for key, alg in self._candidates(token):
            try:
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=[alg],
                    audience=self.audience,
                    issuer=self.issuer,
                    leeway=self.leeway,
                    options={
                        "require": ["exp"],
                        "verify_exp": False,  # checked below against the injected clock
                        "verify_nbf": False,
                        "verify_iat": False,
                    },
                )
                break
            except jwt.InvalidAudienceError:
                failure = "wrong audience"
            except jwt.InvalidIssuerError:
                failure = "wrong issuer"
            except jwt.MissingRequiredClaimError as exc:
                failure = f"missing claim {exc.claim}"
            except jwt.PyJWTError:
                failure = "invalid token"
        if claims is None:
            raise AuthError(failure)
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise AuthError("bad exp claim")
        if now >= exp + self.leeway:
            raise AuthError("token expired")
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and now + self.leeway < nbf:
            raise AuthError("token not yet valid")
        room = claims.get("room")
        if room is not None and not isinstance(room, str):
            raise AuthError("bad room claim")
        create = claims.get("create")
        if create is not None and not isinstance(create, bool):
            raise AuthError("bad create claim")
        may_create = create if create is not None else room is None
        sub = claims.get("sub")
        return Grant(
            subject=sub if isinstance(sub, str) else None,
            room=room,
            may_create=may_create,
            expires=float(exp),
        )
