"""What the gateway's use cases need from the outside, as Protocols: the jobs service's reads
(`VideoReader`, served by `openv_infra.jobs_api.JobsApi`), a way to send it commands
(`CommandSender`, served by `adapters.command_bus.CommandBus`) and what a create asks for
(`VideoOrder`, the API's validated request body). Unit tests pass fakes that satisfy them."""

from typing import Protocol
from uuid import UUID

from openv_contracts.base import Message
from openv_contracts.queries import EventPage, UsageView, VideoPage, VideoView
from openv_contracts.video import VideoParams, VideoStatus


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
