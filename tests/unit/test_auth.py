"""JWT verification with real keys: HS256, RS256, ES256, JWKS; claims and expiry."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import jwt
import pytest

from signaling.transport.auth import Authenticator, AuthError, token_from
from tests.support.keys import SECRET, KeyPair, claims, ec_pair, hs_token, rsa_pair

NOW = time.time()


def test_hs256_grant_and_claims() -> None:
    auth = Authenticator(secret=SECRET)
    grant = auth.verify(hs_token(claims(room="4821")), NOW)
    assert grant.subject == "alice" and grant.room == "4821"
    assert not grant.may_create  # a room-bound token cannot create unless it says so
    assert grant.may_enter("4821") and not grant.may_enter("1234")
    assert auth.verify(hs_token(claims()), NOW).may_create
    assert not auth.verify(hs_token(claims(create=False)), NOW).may_create
    assert auth.verify(hs_token(claims(room="4821", create=True)), NOW).may_create


@pytest.mark.parametrize("pair", [rsa_pair, ec_pair], ids=["RS256", "ES256"])
def test_public_keys(pair: Callable[[], KeyPair]) -> None:
    keys = pair()
    auth = Authenticator(public_key_pem=keys.public_pem)
    assert auth.verify(keys.token(claims()), NOW).subject == "alice"
    other = pair()
    with pytest.raises(AuthError, match="invalid token"):
        auth.verify(other.token(claims()), NOW)


def test_jwks_selects_by_kid() -> None:
    r, e = rsa_pair(), ec_pair()
    auth = Authenticator(jwks={"keys": [r.jwk("r1"), e.jwk("e1")]})
    assert auth.verify(r.token(claims(), kid="r1"), NOW).subject == "alice"
    assert auth.verify(e.token(claims(), kid="e1"), NOW).subject == "alice"
    with pytest.raises(AuthError):
        auth.verify(r.token(claims(), kid="e1"), NOW)  # wrong key for that kid
    with pytest.raises(AuthError):
        auth.verify(rsa_pair().token(claims(), kid="unknown"), NOW)


def test_expiry_is_checked_against_the_given_clock() -> None:
    auth = Authenticator(secret=SECRET)
    token = hs_token({"exp": 1000})
    assert auth.verify(token, 999.0).expires == 1000.0
    with pytest.raises(AuthError, match="expired"):
        auth.verify(token, 1000.0)
    with pytest.raises(AuthError, match="missing claim exp"):
        auth.verify(hs_token({"sub": "x"}), NOW)
    with pytest.raises(AuthError, match="not yet valid"):
        auth.verify(hs_token({"exp": 2000, "nbf": 1500}), 1000.0)


def test_algorithm_confusion_and_none_are_refused() -> None:
    keys = rsa_pair()
    auth = Authenticator(public_key_pem=keys.public_pem)
    # HS256 signed with the public key's PEM as the secret: the classic confusion attack.
    forged = jwt.encode(claims(), "x" * 64, algorithm="HS256")
    with pytest.raises(AuthError):
        auth.verify(forged, NOW)
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    unsigned = (head + b"." + body + b".").decode()
    with pytest.raises(AuthError):
        auth.verify(unsigned, NOW)
    with pytest.raises(AuthError, match="malformed"):
        auth.verify("not.a.jwt", NOW)


def test_audience_and_issuer() -> None:
    auth = Authenticator(secret=SECRET, audience="sig", issuer="https://id.example")
    good = hs_token(claims(aud="sig", iss="https://id.example"))
    assert auth.verify(good, NOW)
    with pytest.raises(AuthError, match="audience"):
        auth.verify(hs_token(claims(aud="other", iss="https://id.example")), NOW)
    with pytest.raises(AuthError, match="issuer"):
        auth.verify(hs_token(claims(aud="sig", iss="https://evil")), NOW)


def test_bad_claim_types() -> None:
    auth = Authenticator(secret=SECRET)
    with pytest.raises(AuthError, match="room"):
        auth.verify(hs_token(claims(room=1234)), NOW)
    with pytest.raises(AuthError, match="create"):
        auth.verify(hs_token(claims(create="yes")), NOW)


def test_short_secret_and_no_key_are_configuration_errors() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Authenticator(secret="short")
    with pytest.raises(ValueError):
        Authenticator()
    assert Authenticator.from_files() is None


def test_token_sources() -> None:
    assert token_from({"Authorization": "Bearer abc"}, "/", []) == "abc"
    assert token_from([("authorization", "bearer  abc ")], "/", []) == "abc"
    assert token_from({}, "/?room=1&token=abc", []) == "abc"
    assert token_from({}, "/", ["signaling.v2", "bearer.abc"]) == "abc"
    assert token_from({"Authorization": "Basic xyz"}, "/", ["bearer."]) is None
    assert token_from({}, "/?x=1", []) is None


def test_error_messages_never_contain_the_token() -> None:
    auth = Authenticator(secret=SECRET)
    token = hs_token({"exp": 1})
    with pytest.raises(AuthError) as info:
        auth.verify(token, NOW)
    assert token not in str(info.value) and token.split(".")[1] not in str(info.value)
