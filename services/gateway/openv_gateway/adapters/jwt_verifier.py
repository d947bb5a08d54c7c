"""Supabase-compatible access tokens: HS256 with the project's secret, or RS256/ES256 with a
key from the project's JWKS; `aud`, `exp` and `sub` required (`iss` too when an issuer is
configured), optional `role`; anonymous users (`is_anonymous: true`) only when allowed.

With `cache_size`, each verified token is remembered (by its hash) until its `exp` plus the
leeway (`domain.verified_tokens`), so a client polling with the same token pays for its
verification once."""

import time
from collections.abc import Callable

import jwt

from openv_contracts.segments import is_user_id
from openv_gateway.adapters.jwks import JWKS_ALGORITHMS, JwksKeys, JwksUnavailable
from openv_gateway.domain.principal import Principal
from openv_gateway.domain.verified_tokens import VerifiedTokens, token_key


class InvalidToken(Exception):
    pass


class JwtVerifier:
    def __init__(
        self,
        secret: str,
        audience: str,
        jwks: JwksKeys | None = None,
        *,
        issuer: str | None = None,
        allow_anonymous: bool = False,
        leeway_s: float = 30.0,
        cache_size: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.secret = secret
        self.audience = audience
        self.jwks = jwks
        self.issuer = issuer or None
        self.allow_anonymous = allow_anonymous
        self.leeway_s = leeway_s
        required = ["exp", "sub", "aud", *(["iss"] if self.issuer else [])]
        self._options: jwt.types.Options = {"require": required}
        self._verified = VerifiedTokens(cache_size)
        self._clock = clock

    def verify(self, token: str) -> Principal:
        """HS256 only (no I/O): Supabase's classic tokens."""
        if not self.secret:
            raise InvalidToken("HS256 tokens are not accepted")
        key = token_key(token)
        cached = self._verified.get(key, self._clock())
        if cached is not None and cached[1] == "HS256":
            return cached[0]
        return self._decode(token, self.secret, ["HS256"], key)

    def remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before and still valid (no I/O); None otherwise
        (then `verify_any` decides)."""
        cached = self._verified.get(token_key(token), self._clock())
        return cached[0] if cached is not None else None

    async def verify_any(self, token: str) -> Principal:
        """HS256 with the secret or RS256/ES256 with a JWKS key, chosen by the key source."""
        cache_key = token_key(token)
        cached = self._verified.get(cache_key, self._clock())
        if cached is not None:
            return cached[0]
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        alg = header.get("alg")
        # The algorithm is chosen by the key source, never by the token: `none`, or HS256
        # signed with a public key, finds no key here.
        if alg == "HS256" and self.secret:
            return self._decode(token, self.secret, ["HS256"], cache_key)
        if alg in JWKS_ALGORITHMS and self.jwks is not None:
            kid = header.get("kid")
            try:
                key = await self.jwks.key(kid if isinstance(kid, str) else None)
            except JwksUnavailable as exc:
                raise InvalidToken("signing keys unavailable") from exc
            if key is None or key.algorithm_name != alg:
                raise InvalidToken("unknown signing key")
            return self._decode(token, key.key, [alg], cache_key)
        raise InvalidToken(f"algorithm {alg!r} not accepted")

    def _decode(
        self, token: str, key: object, algorithms: list[str], cache_key: bytes
    ) -> Principal:
        try:
            claims = jwt.decode(
                token,
                key,  # type: ignore[arg-type]
                algorithms=algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        sub = claims.get("sub")
        # The user id becomes a segment of object keys and internal URLs.
        if not isinstance(sub, str) or not is_user_id(sub):
            raise InvalidToken("invalid sub")
        # Anyone can sign in anonymously: such users would spend GPU time without an account.
        if claims.get("is_anonymous") is True and not self.allow_anonymous:
            raise InvalidToken("anonymous users are not accepted")
        principal = Principal(user_id=sub, is_admin=claims.get("role") == "admin")
        # `exp` is required, so a decoded token has one: remembered for as long as PyJWT would
        # accept it (it refuses once `int(exp) <= now - leeway`).
        valid_until = int(claims["exp"]) + self.leeway_s
        self._verified.put(cache_key, principal, algorithms[0], valid_until)
        return principal
