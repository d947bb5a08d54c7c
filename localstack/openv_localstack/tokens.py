"""Access tokens for local use: the same shape Supabase Auth issues (HS256, aud, sub, exp)."""

import time

import jwt

#: The local stack's JWT secret; production sets OPENV_JWT_SECRET to Supabase's.
LOCAL_JWT_SECRET = "openv-local-dev-jwt-secret-change-me-0123456789"  # noqa: S105 (local only)


def make_token(
    user_id: str,
    secret: str = LOCAL_JWT_SECRET,
    *,
    audience: str = "authenticated",
    ttl_s: int = 3600,
    role: str | None = None,
) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "aud": audience, "iat": now, "exp": now + ttl_s}
    claims["role"] = role or "authenticated"
    return jwt.encode(claims, secret, algorithm="HS256")
