"""The bucket as the bridge needs it: a presigned upload URL for the worker, a check that
the worker's upload really arrived, and storing a result the worker returned inline."""

import asyncio
import io
from datetime import timedelta

from minio import Minio
from minio.error import S3Error


class ObjectStore:
    def __init__(self, client: Minio, public_client: Minio, bucket: str) -> None:
        self.client = client
        self.public_client = public_client
        self.bucket = bucket

    def upload_url(self, key: str, expires_s: int) -> str:
        return self.public_client.presigned_put_object(
            self.bucket, key, expires=timedelta(seconds=expires_s)
        )

    async def size_of(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in {"NoSuchKey", "NoSuchObject", "NotFound"}:
                return None
            raise
        return int(stat.size or 0)

    async def put_video(self, key: str, video: bytes) -> None:
        """Store an MP4 the bridge already checked (an inline result) at the video's key."""
        await asyncio.to_thread(
            self.client.put_object,
            self.bucket,
            key,
            io.BytesIO(video),
            len(video),
            content_type="video/mp4",
        )
