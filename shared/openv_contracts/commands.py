"""Commands: what the gateway asks the jobs service to decide. Topic `openv.commands`."""

from uuid import UUID

from openv_contracts.base import Message
from openv_contracts.video import Prompt, VideoParams
from openv_contracts.webhooks import WebhookTarget


class RequestVideo(Message):
    TYPE = "RequestVideo"
    VERSION = 1

    video_id: UUID
    prompt: Prompt
    params: VideoParams
    idempotency_key: str | None = None
    #: Where to send the video's changes. Optional: absent before webhooks existed.
    webhook: WebhookTarget | None = None


class CancelVideo(Message):
    TYPE = "CancelVideo"
    VERSION = 1

    video_id: UUID


class DeleteVideo(Message):
    TYPE = "DeleteVideo"
    VERSION = 1

    video_id: UUID
