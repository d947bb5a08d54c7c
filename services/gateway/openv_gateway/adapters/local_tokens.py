"""Access tokens the local stack's "sign in as" form gets: the shape Supabase Auth issues
(HS256 with the configured secret, `aud`, `sub`, `exp`), so the API verifies them like any
other. Only ever wired up in local mode (openv_gateway.entrypoints.local_sign_in)."""

import time

import jwt


class LocalTokens:
    def __init__(self, secret: str, audience: str, ttl_s: int) -> None:
        self._secret = secret
        self._audience = audience
        self.ttl_s = ttl_s

    def mint(self, user_id: str) -> str:
        now = int(time.time())
        claims = {
            "sub": user_id,
            "aud": self._audience,
            "iat": now,
            "exp": now + self.ttl_s,
            "role": "authenticated",
        }
        return jwt.encode(claims, self._secret, algorithm="HS256")
