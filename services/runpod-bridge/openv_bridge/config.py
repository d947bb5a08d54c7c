"""RunPod bridge settings (environment variables with the `OPENV_` prefix)."""

from pydantic import SecretStr

from openv_shared.settings import BaseServiceSettings, DatabaseSettings, KafkaSettings, S3Settings


class Settings(BaseServiceSettings, KafkaSettings, DatabaseSettings, S3Settings):
    port: int = 8020
    runpod_base_url: str = "https://api.runpod.ai/v2"
    runpod_endpoint_id: str = "openv-mochi"
    runpod_api_key: SecretStr = SecretStr("sim-key")
    #: Timeout for one RunPod HTTP call (seconds).
    runpod_timeout_s: float = 10.0
    #: RunPod policy: how long a job may run, and how long it may live at all (ms on the wire).
    runpod_execution_timeout_s: int = 600
    runpod_ttl_s: int = 86400
    #: Base URL RunPod can reach this bridge at; the webhook path and token are appended.
    webhook_base_url: str = "http://127.0.0.1:8020"
    #: Key for the per-video webhook tokens (HMAC-SHA256). Set a long random value in production.
    webhook_secret: SecretStr = SecretStr("local-dev-webhook-secret-change-me")
    #: How long the worker's presigned upload URL stays valid (must exceed the execution timeout).
    upload_url_expiry_s: int = 7200
