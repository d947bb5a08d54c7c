"""Storage service settings (environment variables with the `OPENV_` prefix)."""

from openv_shared.settings import BaseServiceSettings, KafkaSettings, S3Settings


class Settings(BaseServiceSettings, KafkaSettings, S3Settings):
    port: int = 8030
