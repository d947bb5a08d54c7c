"""The one object-key scheme: every object of a video lives under its prefix."""

from uuid import UUID

from openv_contracts.segments import path_segment


def video_prefix(user_id: str, video_id: UUID) -> str:
    # Encoded, so no user id can escape its segment (a no-op for the ids the gateway admits).
    return f"videos/{path_segment(user_id)}/{video_id}/"


def video_output_key(user_id: str, video_id: UUID) -> str:
    return f"{video_prefix(user_id, video_id)}video.mp4"


def video_uploads_prefix(user_id: str, video_id: UUID) -> str:
    """Where workers' uploads are staged before the bridge checks them and copies the good one
    to `video_output_key`: inside the video's prefix, so deleting the video removes them."""
    return f"{video_prefix(user_id, video_id)}uploads/"


def video_poster_key(user_id: str, video_id: UUID) -> str:
    """The video's poster frame (a JPEG the storage service extracts from `video_output_key`):
    inside the video's prefix, so deleting the video removes it."""
    return f"{video_prefix(user_id, video_id)}poster.jpg"
