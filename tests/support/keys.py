"""Real signing keys and tokens for the authentication tests (generated per test run)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

SECRET = "test-secret-0123456789abcdef0123456789abcdef"


@dataclass(frozen=True)
class KeyPair:
    private: Any
    public_pem: bytes
    algorithm: str

    def token(self, claims: dict[str, Any], kid: str | None = None) -> str:
        headers = {"kid": kid} if kid else None
        return jwt.encode(claims, self.private, algorithm=self.algorithm, headers=headers)

    def jwk(self, kid: str) -> dict[str, Any]:
        alg = jwt.get_algorithm_by_name(self.algorithm)
        data: dict[str, Any] = json.loads(alg.to_jwk(self.private.public_key()))
        data.update(kid=kid, use="sig", alg=self.algorithm)
        return data


def _pem(key: Any) -> bytes:
    return bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def rsa_pair() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return KeyPair(key, _pem(key), "RS256")


def ec_pair() -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    return KeyPair(key, _pem(key), "ES256")


def hs_token(claims: dict[str, Any], secret: str = SECRET) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def claims(ttl: float = 300.0, **extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time() + ttl), **extra}
