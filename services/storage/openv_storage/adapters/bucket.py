"""The video bucket through the `minio` client (blocking calls run in a thread)."""

import asyncio

from minio import Minio
from minio.deleteobjects import DeleteObject


class BucketError(Exception):
    pass


class Bucket:
    def __init__(self, client: Minio, name: str) -> None:
        self.client = client
        self.name = name

    async def ensure(self) -> None:
        def create() -> None:
            if not self.client.bucket_exists(self.name):
                self.client.make_bucket(self.name)

        await asyncio.to_thread(create)

    async def remove_prefix(self, prefix: str) -> int:
        """Remove every object under `prefix`; returns how many there were. Already gone is fine."""

        def remove() -> int:
            keys = [
                obj.object_name
                for obj in self.client.list_objects(self.name, prefix=prefix, recursive=True)
                if obj.object_name
            ]
            if not keys:
                return 0
            errors = list(self.client.remove_objects(self.name, [DeleteObject(k) for k in keys]))
            if errors:
                raise BucketError(f"{len(errors)} objects not removed: {errors[0]}")
            return len(keys)

        return await asyncio.to_thread(remove)
