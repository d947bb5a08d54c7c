"""Opening the status stream from a browser's `EventSource`, which cannot send an
`Authorization` header: `POST /v1/videos/{id}/stream-tokens` (with the Bearer token) issues a
short-lived token for that one video and user, and `GET /v1/videos/{id}/stream?stream_token=`
accepts it. An access token is never accepted in the query string (no long-lived token in a
URL, where proxies and browser history keep it); the parameter is redacted from logs
(openv_infra/redact.py)."""

import time
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials

from openv_contracts.queries import JobsUnavailable
from openv_gateway.domain.principal import Principal
from openv_gateway.domain.stream_token import InvalidStreamToken, StreamTokens
from openv_gateway.entrypoints.auth import (
    CurrentPrincipal,
    authenticate,
    bearer,
    limit_anonymous,
    limit_user,
)
from openv_gateway.entrypoints.dependencies import Service, VideoId, not_found, parse_video_id
from openv_gateway.entrypoints.problems import CHALLENGE, COMMON, NOT_FOUND, ApiError, unavailable
from openv_gateway.entrypoints.schemas import StreamToken
from openv_gateway.service_layer.videos import VideoNotFound

router = APIRouter(prefix="/v1", tags=["videos"])

PARAMETER = "stream_token"

_stream_token = APIKeyQuery(
    name=PARAMETER,
    auto_error=False,
    scheme_name="StreamToken",
    description="A stream token from `POST /v1/videos/{id}/stream-tokens`: only for "
    "`GET /v1/videos/{id}/stream` of that video, for a few minutes. Access tokens are "
    "refused here.",
)


def stream_tokens(request: Request) -> StreamTokens:
    tokens: StreamTokens = request.app.state.stream_tokens
    return tokens


async def stream_principal(
    request: Request,
    video_id: VideoId,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    token: Annotated[str | None, Depends(_stream_token)],
) -> Principal:
    """The stream's caller: by the `stream_token` parameter when given, else the header."""
    if token is None:
        return await authenticate(request, credentials)
    try:
        principal = stream_tokens(request).verify(token, UUID(video_id), time.time())
    except (InvalidStreamToken, ValueError):
        limit_anonymous(request)
        raise ApiError(
            401,
            "unauthorized",
            "the stream token is invalid, expired or for another video",
            CHALLENGE,
        ) from None
    limit_user(request, principal)
    return principal


StreamPrincipal = Annotated[Principal, Depends(stream_principal)]


@router.post(
    "/videos/{video_id}/stream-tokens",
    operation_id="createStreamToken",
    status_code=201,
    response_model=StreamToken,
    responses={**COMMON, 404: NOT_FOUND},
    summary="A short-lived token to open the video's stream from a browser",
    description="For `EventSource`, which cannot send an `Authorization` header: the token "
    "opens `GET /v1/videos/{id}/stream?stream_token=...` of this video only, for this user "
    "only, until `expires_at` (a few minutes; reconnects included). Ask for a new one when "
    "a reconnect is refused with 401.",
)
async def create_stream_token(
    request: Request, video_id: VideoId, principal: CurrentPrincipal, service: Service
) -> JSONResponse:
    vid = parse_video_id(video_id)
    try:
        await service.find(principal, vid)
    except VideoNotFound:
        raise not_found() from None
    except JobsUnavailable as exc:
        raise unavailable() from exc
    issued = stream_tokens(request).issue(principal, vid, time.time())
    body = StreamToken(
        token=issued.token,
        expires_at=datetime.fromtimestamp(issued.expires_at, UTC),
        url=f"/v1/videos/{vid}/stream?{PARAMETER}={quote(issued.token, safe='')}",
    )
    return JSONResponse(
        body.model_dump(mode="json"), status_code=201, headers={"Cache-Control": "no-store"}
    )
