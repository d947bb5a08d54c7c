"""Supabase-compatible access tokens: HS256 with the project's secret, or RS256/ES256 with a
key from the project's JWKS; `aud`, `exp` and `sub` required, optional `role`."""

import re

import jwt

from openv_gateway.adapters.jwks import JWKS_ALGORITHMS, JwksKeys, JwksUnavailable
from openv_gateway.domain.principal import Principal

# User ids become part of object keys: no slashes, bounded length (Supabase uses UUIDs).
_SUB = re.compile(r"^[A-Za-z0-9_.@:-]{1,128}$")
_OPTIONS: jwt.types.Options = {"require": ["exp", "sub", "aud"]}


class InvalidToken(Exception):
    pass


class JwtVerifier:
    def __init__(self, secret: str, audience: str, jwks: JwksKeys | None = None) -> None:
        self.secret = secret
        self.audience = audience
        self.jwks = jwks

    def verify(self, token: str) -> Principal:
        """HS256 only (no I/O): Supabase's classic tokens."""
        if not self.secret:
            raise InvalidToken("HS256 tokens are not accepted")
        return self._decode(token, self.secret, ["HS256"])

    async def verify_any(self, token: str) -> Principal:
        """HS256 with the secret or RS256/ES256 with a JWKS key, chosen by the key source."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        alg = header.get("alg")
        # The algorithm is chosen by the key source, never by the token: `none`, or HS256
        # signed with a public key, finds no key here.
        if alg == "HS256" and self.secret:
            return self.verify(token)
        if alg in JWKS_ALGORITHMS and self.jwks is not None:
            kid = header.get("kid")
            try:
                key = await self.jwks.key(kid if isinstance(kid, str) else None)
            except JwksUnavailable as exc:
                raise InvalidToken("signing keys unavailable") from exc
            if key is None or key.algorithm_name != alg:
                raise InvalidToken("unknown signing key")
            return self._decode(token, key.key, [alg])
        raise InvalidToken(f"algorithm {alg!r} not accepted")

    def _decode(self, token: str, key: object, algorithms: list[str]) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=algorithms,
                audience=self.audience,
                options=_OPTIONS,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub = claims.get("sub")
        if not isinstance(sub, str) or not _SUB.fullmatch(sub):
            raise InvalidToken("invalid sub")
        return Principal(user_id=sub, is_admin=claims.get("role") == "admin")
