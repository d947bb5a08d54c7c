"""Presigned playback URLs for finished videos."""

from datetime import UTC, datetime, timedelta

from minio import Minio


class Playback:
    def __init__(self, public_client: Minio, bucket: str, expiry_s: int) -> None:
        self.client = public_client
        self.bucket = bucket
        self.expiry = timedelta(seconds=expiry_s)

    def url(self, key: str) -> tuple[str, datetime]:
        expires_at = datetime.now(UTC) + self.expiry
        return self.client.presigned_get_object(self.bucket, key, expires=self.expiry), expires_at
