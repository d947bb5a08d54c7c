"""The object-key scheme, as the storage service reads it.

Every object of a video lives under one prefix (built by `openv_contracts.storage_keys`):

    videos/{user_id}/{video_id}/            the video's prefix (`video_prefix`)
    videos/{user_id}/{video_id}/video.mp4   the rendered or imported result (`video_output_key`)
    videos/{user_id}/{video_id}/poster.jpg  a still of it (`video_poster_key`)

- `user_id` is the owner's id (the JWT `sub`: a plain path segment, at most 128 characters;
  percent-encoded by `video_prefix`, which changes none the gateway admits);
  `video_id` is the video's UUID in its canonical lowercase form.
- Everything under a video's prefix belongs to that video and to nothing else: deleting the
  video removes the whole prefix, and an object is only ever written inside the prefix of the
  video it belongs to.
- Keys outside `videos/` are not the storage service's: the sweeper leaves them alone.

The functions here parse and check keys; they never build them (shared does).
"""

from dataclasses import dataclass
from typing import Final
from uuid import UUID

from openv_contracts.segments import is_user_id
from openv_contracts.storage_keys import video_prefix

ROOT: Final = "videos/"


@dataclass(frozen=True)
class VideoKey:
    """Whose video an object key belongs to."""

    user_id: str
    video_id: UUID

    @property
    def prefix(self) -> str:
        return video_prefix(self.user_id, self.video_id)


def _canonical_uuid(text: str) -> UUID | None:
    try:
        value = UUID(text)
    except ValueError:
        return None
    return value if str(value) == text else None


def parse_video_key(key: str) -> VideoKey | None:
    """The video an object key belongs to, or None if the key does not follow the scheme.

    `videos/{user_id}/{video_id}/{rest}` with a user id as the gateway admits them (so the
    key's segment is the id itself, see `openv_contracts.segments`), a canonical UUID and no
    empty, `.` or `..` segment.
    """
    if not key.startswith(ROOT):
        return None
    parts = key[len(ROOT) :].split("/", 2)
    if len(parts) != 3:
        return None
    user_id, video_text, rest = parts
    video_id = _canonical_uuid(video_text)
    if (
        video_id is None
        or not is_user_id(user_id)
        or not _plain_segments([user_id, *rest.split("/")])
    ):
        return None
    return VideoKey(user_id, video_id)


def _plain_segments(segments: list[str]) -> bool:
    # Empty, "." and ".." segments are refused: an HTTP layer may normalise them away and
    # so address another object than the one checked.
    return all(segment not in {"", ".", ".."} for segment in segments)


def is_video_prefix(prefix: str, video_id: UUID) -> bool:
    """Whether `prefix` is exactly some user's prefix of `video_id` (never a broader one)."""
    if not prefix.startswith(ROOT) or not prefix.endswith("/"):
        return False
    parts = prefix[len(ROOT) : -1].split("/")
    return len(parts) == 2 and _plain_segments(parts[:1]) and parts[1] == str(video_id)


def key_belongs_to(key: str, video_id: UUID, user_id: str | None) -> bool:
    """Whether `key` lies inside the prefix of `video_id` (and of `user_id`, when known)."""
    parsed = parse_video_key(key)
    if parsed is None or parsed.video_id != video_id:
        return False
    return user_id is None or parsed.user_id == user_id
