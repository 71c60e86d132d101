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


def test_consortium_claim_round_trips_and_is_optional():
    issuer = TokenIssuer(SECRET)
    assert issuer.verify(issuer.mint("r1", "teacher", "x", consortium="yandi")).consortium == (
        "yandi"
    )
    assert issuer.verify(issuer.mint("r1", "teacher", "x")).consortium is None


def test_cli_token_and_demo_links_carry_the_consortium(capsys, tmp_path):
    from server.cli import demo_links, main
    from server.config import load_settings

    config = tmp_path / "tongke.toml"
    config.write_text(f'[tokens]\nsecret = "{SECRET}"\n[data]\ndir = "{tmp_path}"\n')
    settings = load_settings(config)
    assert settings.demo is not None
    argv = ["--config", str(config), "token", "--room", "r1", "--role", "member", "--name", "李"]
    assert main([*argv, "--consortium", "huarong-shiyan"]) == 0
    token = capsys.readouterr().out.strip()
    issuer = TokenIssuer(settings.secret)
    assert issuer.verify(token).consortium == "huarong-shiyan"
    links = demo_links(settings)
    assert links
    for _, url in links:
        identity = issuer.verify(url.split("token=", 1)[1])
        assert identity.consortium == settings.demo.id
