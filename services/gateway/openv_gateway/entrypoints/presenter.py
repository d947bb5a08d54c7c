"""Turn the jobs service's view of a video into the public resource."""

from openv_gateway.adapters.playback import Playback
from openv_gateway.entrypoints.schemas import Video, VideoError, VideoFile, VideoParamsOut
from openv_shared.contracts.queries import VideoView
from openv_shared.contracts.video import VideoStatus


def present(view: VideoView, playback: Playback) -> Video:
    file = None
    if view.status is VideoStatus.COMPLETED and view.object_key:
        url, expires_at = playback.url(view.object_key)
        file = VideoFile(
            url=url,
            expires_at=expires_at,
            content_type=view.content_type or "video/mp4",
            size_bytes=view.size_bytes,
        )
    return Video(
        id=view.id,
        status=view.status,
        progress=view.progress,
        queue_position=None,
        prompt=view.prompt,
        params=VideoParamsOut.model_validate(view.params.model_dump()),
        duration_seconds=round(view.duration_seconds, 3),
        created_at=view.created_at,
        updated_at=view.updated_at,
        started_at=view.started_at,
        completed_at=view.completed_at,
        video=file,
        error=VideoError(code=view.error.code, message=view.error.message) if view.error else None,
        file_deleted=view.file_deleted,
    )
