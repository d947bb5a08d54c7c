"""The bucket as the bridge needs it: a presigned upload URL for the worker, what the
completion check does with the worker's upload (look at it, copy it to the video's key, remove
the staging object), and storing a result the worker returned inline."""

import asyncio
import io
from datetime import datetime, timedelta

from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error

_MISSING = {"NoSuchKey", "NoSuchObject", "NotFound"}


class ObjectStore:
    def __init__(self, client: Minio, public_client: Minio, bucket: str) -> None:
        self.client = client
        self.public_client = public_client
        self.bucket = bucket

    def upload_url(self, key: str, expires_s: int, signed_at: datetime | None = None) -> str:
        """A presigned PUT of `key`, valid `expires_s` from `signed_at` (now by default)."""
        return self.public_client.get_presigned_url(
            "PUT", self.bucket, key, expires=timedelta(seconds=expires_s), request_date=signed_at
        )

    async def size_of(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""
        try:
            stat = await asyncio.to_thread(self.client.stat_object, self.bucket, key)
        except S3Error as exc:
            if exc.code in _MISSING:
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

    async def head(self, key: str, length: int) -> bytes:
        """The object's first `length` bytes (a ranged GET); b"" if it does not exist."""

        def read() -> bytes:
            response = self.client.get_object(self.bucket, key, offset=0, length=length)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        try:
            return await asyncio.to_thread(read)
        except S3Error as exc:
            if exc.code in _MISSING:
                return b""
            raise

    async def keys(self, prefix: str) -> list[str]:
        """Keys of the objects under `prefix`."""

        def names() -> list[str]:
            listing = self.client.list_objects(self.bucket, prefix=prefix, recursive=True)
            return [obj.object_name for obj in listing if obj.object_name]

        return await asyncio.to_thread(names)

    async def copy(self, source: str, target: str) -> None:
        """Server-side copy (one request: S3 copies up to 5 GiB so)."""
        await asyncio.to_thread(
            self.client.copy_object, self.bucket, target, CopySource(self.bucket, source)
        )

    async def remove(self, key: str) -> None:
        """Remove an object; already gone counts as removed."""
        await asyncio.to_thread(self.client.remove_object, self.bucket, key)
