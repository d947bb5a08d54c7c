"""The one object-key scheme: every object of a video lives under its prefix."""

from uuid import UUID


def video_prefix(user_id: str, video_id: UUID) -> str:
    return f"videos/{user_id}/{video_id}/"


def video_output_key(user_id: str, video_id: UUID) -> str:
    return f"{video_prefix(user_id, video_id)}video.mp4"
