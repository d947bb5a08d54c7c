"""The bearer-token dependency: every /v1 route needs a valid token."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openv_gateway.adapters.jwt_verifier import InvalidToken, JwtVerifier
from openv_gateway.domain.principal import Principal
from openv_gateway.entrypoints.problems import ApiError

_bearer = HTTPBearer(auto_error=False, description="Supabase access token (JWT)")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None:
        raise ApiError(401, "unauthorized", "a bearer token is required", _CHALLENGE)
    verifier: JwtVerifier = request.app.state.jwt
    try:
        return verifier.verify(credentials.credentials)
    except InvalidToken:
        raise ApiError(401, "unauthorized", "the token is invalid or expired", _CHALLENGE) from None


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
