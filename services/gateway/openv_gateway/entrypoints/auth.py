"""The bearer-token dependency: every /v1 route needs a valid token, within the user's rate."""

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier
from openv_gateway.domain.principal import Principal
from openv_gateway.domain.rate_limit import RateLimiter, retry_after_header
from openv_gateway.entrypoints.problems import CHALLENGE, ApiError

bearer = HTTPBearer(
    auto_error=False,
    description="A Supabase Auth access token: HS256 with the project's JWT secret, or "
    "RS256/ES256 with a key of the configured JWKS; `aud` must match, `exp` and `sub` are "
    "required; `role: admin` sees every user's videos.",
)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None:
        limit_anonymous(request)
        raise ApiError(401, "unauthorized", "a bearer token is required", CHALLENGE)
    verifier: JwtVerifier = request.app.state.jwt
    try:
        principal = await verifier.verify_any(credentials.credentials)
    except InvalidToken:
        limit_anonymous(request)
        raise ApiError(401, "unauthorized", "the token is invalid or expired", CHALLENGE) from None
    limit_user(request, principal)
    return principal


def limit_user(request: Request, principal: Principal) -> None:
    """The user's per-instance rate: 429 `rate_limited` beyond it."""
    limiter: RateLimiter = request.app.state.rate_limiter
    wait_s = limiter.take(principal.user_id, time.monotonic())
    if wait_s > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests; slow down",
            {"Retry-After": retry_after_header(wait_s)},
        )


def limit_anonymous(request: Request) -> None:
    """Requests without a valid token count against their client address (the ASGI client:
    behind a proxy, uvicorn's FORWARDED_ALLOW_IPS decides whether X-Forwarded-For is believed).
    Routes without authentication (/healthz, /readyz, the docs) are not counted."""
    limiter: RateLimiter = request.app.state.anonymous_rate_limiter
    address = request.client.host if request.client else "unknown"
    wait_s = limiter.take(address, time.monotonic())
    if wait_s > 0:
        raise ApiError(
            429,
            "rate_limited",
            "too many requests without a valid token from this address; slow down",
            {"Retry-After": retry_after_header(wait_s)},
        )


class _BearerPrincipal(HTTPBearer):
    """`bearer` (the same scheme in the OpenAPI document) resolved straight to the principal:
    one dependency for FastAPI to solve per request instead of two, each of which cost more
    than a cached read of a video."""

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        return await authenticate(request, await super().__call__(request))


CurrentPrincipal = Annotated[
    Principal,
    Depends(
        _BearerPrincipal(
            auto_error=False, description=bearer.model.description, scheme_name="HTTPBearer"
        )
    ),
]
