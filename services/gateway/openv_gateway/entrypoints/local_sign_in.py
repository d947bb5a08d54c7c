"""`POST /app/local-token`: the local stack's "sign in as" form. It mints a token for any
user id, so it exists only when OPENV_ENV=local AND OPENV_LOCAL_SIGN_IN is on; outside local
mode the gateway refuses to start with the setting on (config.Settings)."""

from typing import Annotated

from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from openv_gateway.adapters.local_tokens import LocalTokens
from openv_gateway.config import Settings

#: How long a local token lasts (the page signs in again after it).
LOCAL_TOKEN_TTL_S = 8 * 3600


class LocalSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    user_id: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:-]+$")]


class LocalToken(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int


def enabled(settings: Settings) -> bool:
    return settings.is_local and settings.local_sign_in


def install(app: FastAPI, settings: Settings) -> None:
    if not enabled(settings):
        return
    tokens = LocalTokens(
        settings.jwt_secret.get_secret_value(), settings.jwt_audience, LOCAL_TOKEN_TTL_S
    )

    @app.post("/app/local-token", include_in_schema=False)
    async def local_token(body: LocalSignIn) -> LocalToken:
        return LocalToken(access_token=tokens.mint(body.user_id), expires_in=tokens.ttl_s)
