"""A user's webhook signing secret and a video's webhook deliveries, through the webhooks
service (`ports.WebhookDeliveries`). A video's deliveries are shown to whoever may see the
video (`VideosService.find`): another user's video is answered like a missing one."""

from uuid import UUID

from openv_contracts.webhooks import WebhookDeliveryPage, WebhookReplayed, WebhookSecretView
from openv_gateway.domain.pending import PendingVideo
from openv_gateway.domain.principal import Principal
from openv_gateway.service_layer.ports import WebhookDeliveries
from openv_gateway.service_layer.videos import VideosService


class WebhooksService:
    def __init__(self, videos: VideosService, deliveries: WebhookDeliveries) -> None:
        self.videos = videos
        self.api = deliveries

    async def secret(self, principal: Principal) -> WebhookSecretView:
        return await self.api.secret(principal.user_id)

    async def rotate_secret(self, principal: Principal) -> WebhookSecretView:
        return await self.api.rotate_secret(principal.user_id)

    async def deliveries(self, principal: Principal, video_id: UUID) -> WebhookDeliveryPage:
        """Raises `VideoNotFound` for a video the principal may not see."""
        if isinstance(await self.videos.find(principal, video_id), PendingVideo):
            return WebhookDeliveryPage(data=[])  # not decided yet: nothing sent yet
        return await self.api.deliveries(video_id)

    async def replay(self, principal: Principal, video_id: UUID) -> WebhookReplayed:
        """Every failed delivery of the video sent again; raises `VideoNotFound` like above."""
        if isinstance(await self.videos.find(principal, video_id), PendingVideo):
            return WebhookReplayed(replayed=0)
        return await self.api.replay(video_id)
