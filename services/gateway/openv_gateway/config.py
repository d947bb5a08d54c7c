"""Gateway settings (environment variables with the `OPENV_` prefix)."""

from pydantic import SecretStr

from openv_shared.settings import BaseServiceSettings, KafkaSettings, S3Settings


class Settings(BaseServiceSettings, KafkaSettings, S3Settings):
    port: int = 8000
    #: Supabase's JWT secret (HS256). The default is for local development only.
    jwt_secret: SecretStr = SecretStr("openv-local-dev-jwt-secret-change-me-0123456789")
    jwt_audience: str = "authenticated"
    #: The jobs service's internal query API.
    jobs_url: str = "http://127.0.0.1:8010"
    jobs_timeout_s: float = 5.0
    #: How long POST /v1/videos waits for the jobs service's decision before answering `pending`.
    decision_wait_s: float = 5.0
    #: How long a presigned playback URL stays valid.
    playback_url_expiry_s: int = 3600
    #: Suggested poll interval (Retry-After) while a video is not terminal.
    poll_interval_s: int = 2
