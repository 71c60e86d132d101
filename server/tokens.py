"""Signed join tokens (JWT, HS256) carrying room, role and name; optionally the campus and the
consortium (教联体) the holder belongs to, which scopes what the replay library shows."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import jwt

from .roles import ROLES

DEFAULT_TTL = 12 * 3600  # one school day; standing classroom links get a longer ttl


class TokenError(Exception):
    def __init__(self, code: str, message: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.message = message
        self.detail = detail


@dataclass(frozen=True)
class Identity:
    room: str
    role: str
    name: str
    id: str
    campus: str | None = None
    consortium: str | None = None


class TokenIssuer:
    def __init__(self, secret: str, ttl: int = DEFAULT_TTL) -> None:
        if len(secret) < 32:
            raise ValueError("token secret must be at least 32 characters")
        self._secret = secret
        self._ttl = ttl

    def mint(
        self,
        room: str,
        role: str,
        name: str,
        participant_id: str | None = None,
        campus: str | None = None,
        ttl: int | None = None,
        consortium: str | None = None,
    ) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        if not room or not name:
            raise ValueError("room and name must not be empty")
        now = int(time.time())
        claims = {
            "room": room,
            "role": role,
            "name": name,
            "sub": participant_id or uuid.uuid4().hex[:12],
            "iat": now,
            "exp": now + (ttl if ttl is not None else self._ttl),
        }
        if campus:
            claims["campus"] = campus
        if consortium:
            claims["consortium"] = consortium
        return jwt.encode(claims, self._secret, algorithm="HS256")

    def verify_request(self, query_token: str | None, authorization: str | None) -> Identity:
        """The token of an HTTP request: `?token=` (links, pages) or `Authorization: Bearer`."""
        return self.verify((query_token or authorization or "").removeprefix("Bearer "))

    def verify(self, token: str) -> Identity:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub", "room", "role", "name"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError(
                "expired_token", "链接已过期，请向教务索取新的链接。", str(exc)
            ) from exc
        except jwt.InvalidTokenError as exc:
            raise TokenError("bad_token", "链接无效，请检查是否完整复制。", str(exc)) from exc
        role = claims["role"]
        if role not in ROLES:
            raise TokenError("bad_token", "链接无效：未知的角色。", f"unknown role {role!r}")
        for key in ("room", "name", "sub"):
            if not isinstance(claims[key], str) or not claims[key]:
                raise TokenError("bad_token", "链接无效。", f"claim {key} must be a string")
        for key in ("campus", "consortium"):
            if key in claims and not isinstance(claims[key], str):
                raise TokenError("bad_token", "链接无效。", f"claim {key} must be a string")
        return Identity(
            room=claims["room"],
            role=role,
            name=claims["name"],
            id=claims["sub"],
            campus=claims.get("campus"),
            consortium=claims.get("consortium") or None,
        )
