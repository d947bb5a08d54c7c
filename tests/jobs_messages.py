"""Messages and a settable clock the jobs service's tests share (unit, contract, integration)."""

from datetime import UTC, datetime
from uuid import UUID, uuid4

from openv_contracts import Envelope, Message
from openv_contracts.commands import RequestVideo
from openv_contracts.video import VideoParams


class Clock:
    """The service's wall clock, moved by the test (`now` by default: a real time)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def request(user: str, num_frames: int = 31) -> Envelope:
    """A user's request for a new video."""
    cmd = RequestVideo(
        video_id=uuid4(), prompt="a cat", params=VideoParams(seed=1, num_frames=num_frames)
    )
    return Envelope.wrap(cmd, user_id=user)


def fact(message: Message, user: str) -> Envelope:
    return Envelope.wrap(message, user_id=user)


def vid(envelope: Envelope) -> UUID:
    """The video a message is about."""
    return UUID(envelope.data["video_id"])
