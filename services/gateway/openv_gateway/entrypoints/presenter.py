"""Turn the jobs service's view of a video (or a pending request) into the public resource."""

from openv_contracts.public_video import Video, VideoParamsOut, present_with
from openv_contracts.queries import EventPage, UsageView, VideoView
from openv_contracts.video import VideoStatus
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.entrypoints.schemas import Usage, VideoEvent, VideoEventList
from openv_infra.playback import Playback


def present(view: VideoView, playback: Playback) -> Video:
    return present_with(view, playback.links(view))


def present_pending(pending: PendingVideo) -> Video:
    return Video(
        id=pending.video_id,
        status=VideoStatus.PENDING,
        progress=None,
        queue_position=None,
        prompt=pending.prompt,
        params=VideoParamsOut.model_validate(pending.params.model_dump()),
        duration_seconds=round(pending.params.duration_seconds, 3),
        created_at=pending.received_at,
        updated_at=pending.received_at,
        video=None,
        error=None,
        file_deleted=False,
    )


def present_events(page: EventPage) -> VideoEventList:
    return VideoEventList(
        data=[
            VideoEvent(type=e.type, occurred_at=e.occurred_at, version=e.version, data=e.data)
            for e in page.data
        ]
    )


def present_usage(usage: UsageView) -> Usage:
    return Usage.model_validate(usage.model_dump())
