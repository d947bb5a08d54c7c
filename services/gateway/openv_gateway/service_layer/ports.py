"""What the gateway's use cases need from the outside, as Protocols: the jobs service's reads
(`VideoReader`, served by `openv_infra.jobs_api.JobsApi`), a way to send it commands
(`CommandSender`, served by `adapters.command_bus.CommandBus`), what a create asks for
(`VideoOrder`, the API's validated request body), a DNS lookup for webhook hosts
(`HostResolver`, `adapters.host_resolver`) and the webhooks service's API
(`WebhookDeliveries`, `openv_infra.webhooks_api.WebhooksApi`). Unit tests pass fakes that
satisfy them."""

from typing import Protocol
from uuid import UUID

from openv_contracts.base import Message
from openv_contracts.queries import EventPage, UsageView, VideoPage, VideoView
from openv_contracts.video import VideoParams, VideoStatus
from openv_contracts.webhooks import WebhookDeliveryPage, WebhookReplayed, WebhookSecretView
from openv_gateway.domain.webhook_url import IPAddress


class VideoReader(Protocol):
    """The jobs service's query API; every method may raise `JobsUnavailable`."""

    async def video(self, video_id: UUID, version: int | None = None) -> VideoView | None: ...

    async def videos_page(
        self, user_id: str | None, limit: int, cursor: str | None, status: VideoStatus | None
    ) -> VideoPage | None: ...

    async def events(self, video_id: UUID) -> EventPage: ...

    async def usage(self, user_id: str) -> UsageView: ...

    async def healthy(self) -> bool: ...


class CommandSender(Protocol):
    """Publishes a command to the jobs service on behalf of `user_id`."""

    async def send(self, command: Message, user_id: str) -> object: ...


class VideoOrder(Protocol):
    """A create request as validated at the door."""

    @property
    def prompt(self) -> str: ...

    def params(self, default_seed: int) -> VideoParams:
        """The parameters, with `default_seed` where the client chose none."""
        ...


class HostResolver(Protocol):
    """The addresses a host name resolves to now; None when that is not known (the name does
    not resolve, or the resolver took too long)."""

    async def addresses(self, host: str, port: int) -> list[IPAddress] | None: ...


class WebhookDeliveries(Protocol):
    """The webhooks service's internal API (`openv_infra.webhooks_api.WebhooksApi`); every
    method may raise `WebhooksUnavailable`."""

    async def secret(self, user_id: str) -> WebhookSecretView: ...

    async def rotate_secret(self, user_id: str) -> WebhookSecretView: ...

    async def deliveries(self, video_id: UUID) -> WebhookDeliveryPage: ...

    async def replay(self, video_id: UUID) -> WebhookReplayed: ...
