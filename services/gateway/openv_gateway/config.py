"""Gateway settings (environment variables with the `OPENV_` prefix)."""

import re
from typing import Annotated, Self

from pydantic import Field, SecretStr, model_validator

from openv_infra.settings import (
    BaseServiceSettings,
    ClientWebhookAddressSettings,
    Credential,
    KafkaSettings,
    S3Settings,
)


class Settings(BaseServiceSettings, KafkaSettings, S3Settings, ClientWebhookAddressSettings):
    port: int = 8000
    #: Supabase's JWT secret (HS256). The default is for local development only; an empty
    #: secret turns HS256 off (e.g. when only the JWKS keys below are trusted), and so does
    #: leaving it unset while a JWKS URL is set.
    jwt_secret: Annotated[SecretStr, Credential(min_bytes=32, may_be_empty=True)] = SecretStr(
        "openv-local-dev-jwt-secret-change-me-0123456789"
    )
    jwt_audience: str = "authenticated"
    #: Required `iss` of every token when set; Supabase's is `https://<project>.supabase.co/auth/v1`.
    jwt_issuer: str | None = None
    #: Supabase's anonymous sign-ins (`is_anonymous: true`) are refused unless this is on:
    #: anyone can become one, and each could spend GPU time.
    jwt_allow_anonymous: bool = False
    #: Clock skew tolerated on `exp`, `iat` and `nbf` (seconds).
    jwt_leeway_s: float = Field(default=30.0, ge=0, le=300)
    #: JWKS URL of asymmetric signing keys (RS256/ES256), e.g. Supabase's
    #: `https://<project>.supabase.co/auth/v1/.well-known/jwks.json`. Unset: HS256 only.
    jwt_jwks_url: str | None = None
    #: How long fetched JWKS keys are trusted before they are fetched again.
    jwt_jwks_cache_s: float = Field(default=600.0, gt=0)
    #: At most one JWKS fetch per this many seconds beyond the cache expiry (for tokens naming
    #: an unknown key id, and after a failed fetch, whose stale keys keep being used).
    jwt_jwks_min_refresh_s: float = Field(default=30.0, ge=0)
    #: The longest a JWKS fetch (and so a request waiting for it) may take.
    jwt_jwks_timeout_s: float = Field(default=5.0, gt=0)
    #: Verified tokens remembered (by their SHA-256) until they expire, so a polling client's
    #: token is verified once, not on every request; least recently used go first. 0: off.
    jwt_verified_cache_size: int = Field(default=10_000, ge=0)

    @model_validator(mode="after")
    def _jwks_without_explicit_secret_turns_hs256_off(self) -> Self:
        # The development default must not stay a valid key beside real (JWKS) keys.
        if self.jwt_jwks_url and "jwt_secret" not in self.model_fields_set:
            self.jwt_secret = SecretStr("")
        return self

    def production_violations(self) -> list[str]:
        violations = super().production_violations()
        if not self.jwt_secret.get_secret_value() and not self.jwt_jwks_url:
            violations.append("OPENV_JWT_SECRET and OPENV_JWT_JWKS_URL are both empty")
        if self.local_sign_in:
            violations.append("OPENV_LOCAL_SIGN_IN is on (anyone could sign in as anyone)")
        return violations

    #: The jobs service's internal query API.
    jobs_url: str = "http://127.0.0.1:8010"
    jobs_timeout_s: float = 5.0
    #: How long a read of the jobs service may wait for a free connection (100 per instance)
    #: before it fails: a burst of stream opens and polls of videos this instance does not
    #: keep yet (after a restart, say) queues instead of being answered 503.
    jobs_queue_s: float = Field(default=30.0, gt=0)
    #: How long POST /v1/videos waits for the jobs service's decision before answering `pending`.
    decision_wait_s: float = Field(default=5.0, ge=0)
    #: How long a presigned playback URL stays valid.
    playback_url_expiry_s: int = 3600
    #: Suggested poll interval (Retry-After) while a video is not terminal.
    poll_interval_s: int = 2
    #: While the live feed does not follow the video-events topic (starting, reconnecting),
    #: a kept view is served, and a watched video re-read, at most this long / this often.
    #: While it follows, every change arrives as an event and nothing is re-read.
    live_fallback_poll_s: float = Field(default=1.5, gt=0)
    #: Even while the live feed follows the topic, a kept view unchanged this long is read
    #: again (and a watched video re-read this often): a broker restart can lose records
    #: without the consumer failing, and a video's lost last event would never be noticed.
    live_max_trust_s: float = Field(default=30.0, gt=0)
    #: How many videos' current states this instance keeps for reads and streams (least
    #: recently used out first; about 2 KB each).
    known_videos_max: int = Field(default=10_000, ge=1)
    #: Seconds between SSE keep-alive comments on an idle stream.
    sse_keepalive_s: float = Field(default=15.0, gt=0)
    #: Per-user request rate limit of this instance (token bucket): sustained requests/s ...
    rate_limit_per_s: float = Field(default=20.0, gt=0)
    #: ... and burst size. Each gateway instance counts on its own.
    rate_limit_burst: int = Field(default=40, ge=1)
    #: How long this instance answers GET for a request it published but that the jobs service
    #: has not decided yet (status `pending`) instead of 404.
    pending_memory_s: float = Field(default=600.0, ge=0)
    #: Retry-After of a 429 `concurrency_limit`.
    concurrency_retry_after_s: int = Field(default=10, ge=1)

    # --- the door: bodies, long-lived requests, requests without a valid token (issue #18) --
    #: The most body bytes of a create (POST /v1/videos): two 500-character texts even fully
    #: \u-escaped (12 bytes per astral character) and the parameters fit in 16 KiB.
    max_body_bytes_create: int = Field(default=16384, ge=1024)
    #: The most body bytes of any other request (none of them takes a body).
    max_body_bytes_other: int = Field(default=1024, ge=0)
    #: JSON bodies nested deeper than this are refused (422) before they are parsed.
    max_json_depth: int = Field(default=32, ge=2)
    #: Per user and instance: SSE streams, `Prefer: wait` creates and `DELETE ?wait` open at
    #: once; beyond, 429 `rate_limited`.
    max_open_per_user: int = Field(default=8, ge=1)
    #: Retry-After of a 429 for too many open long-lived requests.
    open_retry_after_s: int = Field(default=5, ge=1)
    #: Per client address and instance: requests without a valid token (the 401s), sustained
    #: requests/s ... (the address is the ASGI client host: behind a proxy, uvicorn's
    #: FORWARDED_ALLOW_IPS must name the proxy, or every client shares the proxy's address)
    anonymous_rate_limit_per_s: float = Field(default=5.0, gt=0)
    #: ... and burst size.
    anonymous_rate_limit_burst: int = Field(default=50, ge=1)

    # --- the web app (issue #22) ------------------------------------------------------------
    #: The Supabase project the web app signs in with, e.g. `https://PROJECT.supabase.co`
    #: (public; the page gets it from /app/config.json). Unset: no Supabase sign-in form.
    supabase_url: str | None = None
    #: Supabase's anon key: public by design (it only names the project to Supabase Auth).
    supabase_anon_key: str = ""
    #: The local stack's "sign in as" form (POST /app/local-token mints a token for any user
    #: id): only with OPENV_ENV=local; outside local mode the gateway refuses to start with it.
    local_sign_in: bool = False
    # --- browsers on other origins (issue #22) -------------------------------------------
    #: Origins (`scheme://host[:port]`, comma-separated, exact: no wildcard, no path) whose
    #: pages may call the API from a browser (CORS). Empty: none, only same-origin pages.
    cors_origins: str = ""
    #: How long a browser may cache a preflight's answer (Access-Control-Max-Age).
    cors_max_age_s: int = Field(default=600, ge=0, le=86400)
    #: Signs the short-lived stream tokens (`POST /v1/videos/{id}/stream-tokens`) with which
    #: a browser's EventSource opens one video's stream; shared by every gateway instance.
    stream_token_secret: Annotated[SecretStr, Credential(min_bytes=32)] = SecretStr(
        "openv-local-dev-stream-token-secret-change-me-0123456789"
    )
    #: How long a stream token opens its video's stream (seconds).
    stream_token_ttl_s: int = Field(default=120, ge=10, le=300)

    # --- webhooks to client apps (issue #24) ------------------------------------------------
    #: The webhooks service's internal API (signing secrets, delivery logs, replays).
    webhooks_url: str = "http://127.0.0.1:8040"
    #: Timeout of each step of a call to the webhooks service (connect, send, read).
    webhooks_timeout_s: float = Field(default=5.0, gt=0)

    @property
    def cors_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]

    @model_validator(mode="after")
    def _cors_origins_are_exact(self) -> Self:
        for origin in self.cors_origin_list:
            if not _ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"OPENV_CORS_ORIGINS: {origin!r} is not an exact origin "
                    "(scheme://host[:port], no wildcard, path or trailing slash)"
                )
        return self


_ORIGIN = re.compile(
    r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?"
)
