import time

import jwt
import pytest

from server.tokens import TokenError, TokenIssuer

SECRET = "a-secret-of-enough-length-for-hs256!"


def test_round_trip_carries_room_role_name():
    issuer = TokenIssuer(SECRET)
    identity = issuer.verify(issuer.mint("r1", "classroom", "烈山湖学校七(1)班", campus="lsh"))
    assert (identity.room, identity.role, identity.name, identity.campus) == (
        "r1",
        "classroom",
        "烈山湖学校七(1)班",
        "lsh",
    )


def test_forged_signature_is_refused():
    token = TokenIssuer("another-secret-of-enough-length-hs256").mint("r1", "teacher", "x")
    with pytest.raises(TokenError) as info:
        TokenIssuer(SECRET).verify(token)
    assert info.value.code == "bad_token"


def test_expired_token_is_refused_with_its_own_code():
    token = TokenIssuer(SECRET).mint("r1", "teacher", "x", ttl=-10)
    with pytest.raises(TokenError) as info:
        TokenIssuer(SECRET).verify(token)
    assert info.value.code == "expired_token"
    assert "过期" in info.value.message


def test_tampered_role_is_refused():
    claims = {"room": "r", "role": "admin", "name": "x", "sub": "1", "exp": time.time() + 60}
    with pytest.raises(TokenError):
        TokenIssuer(SECRET).verify(jwt.encode(claims, SECRET, algorithm="HS256"))


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "e30.e30.e30"])
def test_garbage_is_refused(garbage):
    with pytest.raises(TokenError):
        TokenIssuer(SECRET).verify(garbage)


def test_unknown_role_cannot_be_minted():
    with pytest.raises(ValueError):
        TokenIssuer(SECRET).mint("r", "admin", "x")
