"""The video bucket through the `minio` client (blocking calls run in a thread).

The client is built here rather than with `openv_infra.s3.make_minio` because the storage
service owns its retries (bounded, with backoff, then dead-letter): urllib3's own retries are
off and every call has a short timeout, so an unreachable S3 fails fast into that policy.
"""

import asyncio
import concurrent.futures
import io
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, Protocol, TypeVar, cast

import certifi
import urllib3
from minio import Minio
from minio.deleteobjects import DeleteObject
from minio.error import InvalidResponseError, S3Error, ServerError

from openv_infra.settings import S3Settings
from openv_storage.domain.sweep import StoredObject

T = TypeVar("T")

#: Part size of a streamed upload of unknown length (S3's minimum is 5 MiB; at most 10,000
#: parts, so up to ~78 GiB). Imports smaller than one part are a single PUT.
PART_SIZE: Final = 8 * 1024 * 1024
_MISSING: Final = frozenset({"NoSuchKey", "NoSuchObject", "NotFound"})
_EXISTS: Final = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_WAIT_SLICE_S: Final = 1.0


class StorageUnavailable(Exception):
    """S3 did not do what was asked (unreachable, timed out, an error answer): retry later."""


class S3Unreachable(StorageUnavailable):
    """No answer from S3 at all (refused, reset, timed out) or a 5xx: an outage, which passes,
    unlike an error answer about the request (access denied, no such bucket)."""


def make_client(settings: S3Settings, timeout_s: float) -> Minio:
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        ca_certs=certifi.where(),
        retries=False,
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key.get_secret_value(),
        secure=settings.s3_secure,
        region=settings.s3_region,  # no bucket-location round trip
        http_client=http,
    )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, S3Error):
        return f"S3 {exc.code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


_S3_FAILURES: Final = (
    S3Error,
    ServerError,
    InvalidResponseError,
    urllib3.exceptions.HTTPError,
    OSError,
)


#: Error answers that say the server cannot serve now, not that the request is wrong.
_S3_BUSY: Final = frozenset({"SlowDown", "ServiceUnavailable", "InternalError"})


async def _call(what: str, fn: Callable[[], T]) -> T:
    try:
        return await asyncio.to_thread(fn)
    except S3Error as exc:
        kind = S3Unreachable if exc.code in _S3_BUSY else StorageUnavailable
        raise kind(f"{what}: {_describe(exc)}") from exc
    except _S3_FAILURES as exc:
        raise S3Unreachable(f"{what}: {_describe(exc)}") from exc


class ObjectTooLarge(Exception):
    """A download stopped at its size cap: the object is larger than the caller accepts."""


class ChunkSource(Protocol):
    """Bytes produced on the event loop, read from the upload thread."""

    async def read(self, max_bytes: int) -> bytes:
        """Up to `max_bytes` bytes; b"" at the end. May raise to abort the upload."""
        ...


class _ThreadReader:
    """A blocking `read(n)` for minio's upload thread, fed by a ChunkSource on the loop.

    Pull-based: the thread asks the loop for the next bytes and waits, so at most one chunk is
    in flight (backpressure), and an error raised by the source aborts the upload.
    """

    def __init__(
        self, source: ChunkSource, loop: asyncio.AbstractEventLoop, timeout_s: float
    ) -> None:
        self.source = source
        self.loop = loop
        self.timeout_s = timeout_s
        self.error: BaseException | None = None
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        want = size if size > 0 else PART_SIZE
        try:
            data = self._next(want)
        except BaseException as exc:
            self.error = exc
            raise
        self.bytes_read += len(data)
        return data

    def _next(self, size: int) -> bytes:
        future = asyncio.run_coroutine_threadsafe(self.source.read(size), self.loop)
        deadline = time.monotonic() + self.timeout_s
        while True:
            try:
                return future.result(_WAIT_SLICE_S)
            except concurrent.futures.TimeoutError:
                # A stopped loop (shutdown) never runs the read: do not wait for it forever.
                if time.monotonic() > deadline or not self.loop.is_running():
                    future.cancel()
                    raise StorageUnavailable("the download stopped feeding the upload") from None


class Bucket:
    def __init__(self, client: Minio, name: str) -> None:
        self.client = client
        self.name = name

    async def ensure(self) -> bool:
        """Create the bucket if it is missing; True if it was created."""

        def create() -> bool:
            if self.client.bucket_exists(self.name):
                return False
            try:
                self.client.make_bucket(self.name)
            except S3Error as exc:
                if exc.code in _EXISTS:  # another instance created it meanwhile
                    return False
                raise
            return True

        return await _call(f"creating bucket {self.name}", create)

    async def exists(self) -> bool:
        return await _call(
            f"checking bucket {self.name}", lambda: bool(self.client.bucket_exists(self.name))
        )

    async def list_objects(self, prefix: str) -> list[StoredObject]:
        def collect() -> list[StoredObject]:
            return [
                StoredObject(
                    key=obj.object_name,
                    last_modified=obj.last_modified or datetime.now(UTC),
                    size=int(obj.size or 0),
                )
                for obj in self.client.list_objects(self.name, prefix=prefix, recursive=True)
                if obj.object_name
            ]

        return await _call(f"listing {prefix}", collect)

    async def keys(self, prefix: str) -> list[str]:
        return [obj.key for obj in await self.list_objects(prefix)]

    async def remove(self, keys: list[str]) -> None:
        """Remove `keys` (already gone is fine); StorageUnavailable if any removal failed."""
        if not keys:
            return

        def remove() -> None:
            errors = list(self.client.remove_objects(self.name, [DeleteObject(k) for k in keys]))
            failed = [e for e in errors if e.code not in _MISSING]
            if failed:
                first = failed[0]
                raise StorageUnavailable(
                    f"{len(failed)} of {len(keys)} objects not removed; first: "
                    f"{first.name}: {first.code} {first.message}"
                )

        await _call(f"removing {len(keys)} objects", remove)

    async def size_of(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""

        def stat() -> int | None:
            try:
                info: Any = self.client.stat_object(self.name, key)
            except S3Error as exc:
                if exc.code in _MISSING:
                    return None
                raise
            return int(info.size or 0)

        return await _call(f"stat {key}", stat)

    async def put_stream(
        self, key: str, source: ChunkSource, content_type: str, timeout_s: float
    ) -> int:
        """Stream `source` into `key` (multipart when large); returns the bytes written.

        The object appears only once the whole stream was read without error: an error
        raised by `source` is re-raised as is (a started multipart upload is aborted), an S3
        failure becomes StorageUnavailable.
        """
        reader = _ThreadReader(source, asyncio.get_running_loop(), timeout_s)

        def put() -> None:
            self.client.put_object(
                self.name,
                key,
                cast(BinaryIO, reader),
                length=-1,
                part_size=PART_SIZE,
                content_type=content_type,
            )

        try:
            await asyncio.to_thread(put)
        except Exception as exc:
            # The source's error is the cause even if aborting the upload failed after it.
            if reader.error is not None:
                if reader.error is exc:
                    raise
                raise reader.error from exc
            if isinstance(exc, _S3_FAILURES):
                raise StorageUnavailable(f"uploading {key}: {_describe(exc)}") from exc
            raise
        return reader.bytes_read

    async def download(self, key: str, path: Path, max_bytes: int) -> int | None:
        """Write the object `key` to the file `path`, streaming; its size, or None if it does
        not exist. ObjectTooLarge past `max_bytes` (the file then holds a truncated copy)."""

        def fetch() -> int | None:
            try:
                response: Any = self.client.get_object(self.name, key)
            except S3Error as exc:
                if exc.code in _MISSING:
                    return None
                raise
            written = 0
            try:
                with path.open("wb") as file:
                    for chunk in response.stream(1024 * 1024):
                        written += len(chunk)
                        if written > max_bytes:
                            raise ObjectTooLarge(f"{key} is larger than {max_bytes} bytes")
                        file.write(chunk)
            finally:
                response.close()
                response.release_conn()
            return written

        return await _call(f"downloading {key}", fetch)

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> None:
        """Store a small object in one PUT."""
        await _call(
            f"uploading {key}",
            lambda: self.client.put_object(
                self.name, key, io.BytesIO(data), length=len(data), content_type=content_type
            ),
        )
