"""Supabase-compatible access tokens: HS256 with the project's secret, `aud`, `exp`, `sub`."""

import re

import jwt

from openv_gateway.domain.principal import Principal

# User ids become part of object keys: no slashes, bounded length (Supabase uses UUIDs).
_SUB = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")


class InvalidToken(Exception):
    pass


class JwtVerifier:
    def __init__(self, secret: str, audience: str) -> None:
        self.secret = secret
        self.audience = audience

    def verify(self, token: str) -> Principal:
        try:
            # The algorithm list is fixed: a token cannot choose `none` or another algorithm.
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                audience=self.audience,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _SUB.fullmatch(sub):
            raise InvalidToken("invalid sub")
        return Principal(user_id=sub, is_admin=claims.get("role") == "admin")
