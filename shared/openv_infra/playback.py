"""Presigned playback URLs for finished videos, reused for a while.

A presigned URL carries its signing time, so signing on every read would make every answer of
a completed video different (and cost a signature per file per poll). A URL signed for a key is
instead handed out again while at least `REUSE_FRACTION` of its lifetime is left: for the
default hour, the same URL for six minutes. `expires_at` stays truthful (it is the signed
URL's own expiry), and a client always gets at least 90 % of the configured lifetime.
"""

from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from minio import Minio

from openv_contracts.public_video import NO_LINKS, Links
from openv_contracts.queries import VideoView
from openv_contracts.video import VideoStatus

#: A signed URL is reused while this share of its lifetime is left.
REUSE_FRACTION = 0.9
#: URLs remembered (one per object key), least recently used dropped first.
MAX_REMEMBERED = 10_000


def _now() -> datetime:
    return datetime.now(UTC)


class Playback:
    def __init__(
        self,
        public_client: Minio,
        bucket: str,
        expiry_s: int,
        *,
        clock: Callable[[], datetime] = _now,
        size: int = MAX_REMEMBERED,
    ) -> None:
        self.client = public_client
        self.bucket = bucket
        self.expiry = timedelta(seconds=expiry_s)
        self._keep = self.expiry * REUSE_FRACTION
        self._clock = clock
        self._size = size
        self._signed: OrderedDict[str, tuple[str, datetime]] = OrderedDict()

    def url(self, key: str) -> tuple[str, datetime]:
        """A presigned GET URL of `key` and when it stops working."""
        now = self._clock()
        signed = self._signed.get(key)
        if signed is not None and signed[1] - now >= self._keep:
            self._signed.move_to_end(key)
            return signed
        # Signed as of `now` in whole seconds (as the URL states it), so `expires_at` is
        # exactly the URL's own expiry.
        signed_at = now.replace(microsecond=0)
        url = self.client.presigned_get_object(
            self.bucket, key, expires=self.expiry, request_date=signed_at
        )
        signed = self._signed[key] = (url, signed_at + self.expiry)
        self._signed.move_to_end(key)
        while len(self._signed) > self._size:
            self._signed.popitem(last=False)
        return signed

    def links(self, view: VideoView) -> Links:
        """The presigned URLs a video's resource carries (none unless completed)."""
        if view.status is not VideoStatus.COMPLETED:
            return NO_LINKS
        poster_url = self.url(view.poster_key)[0] if view.poster_key else None
        if not view.object_key:
            return None, None, poster_url
        url, expires_at = self.url(view.object_key)
        return url, expires_at, poster_url
