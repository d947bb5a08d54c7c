"""What a RunPod job report means for a video (`reports.interpret`): still waiting, running,
or one of the ways a job ends. Pure data.
"""

from dataclasses import dataclass

from openv_contracts.video import ErrorCode


@dataclass(frozen=True)
class Waiting:
    """Still queued at RunPod: nothing new to say."""


@dataclass(frozen=True)
class Running:
    progress: int | None


@dataclass(frozen=True)
class Uploaded:
    """The worker says it put the file at our key; the caller must check the object."""

    object_key: str


@dataclass(frozen=True)
class ResultUrl:
    """An OpenV-style worker uploaded elsewhere and returned a URL."""

    url: str


@dataclass(frozen=True)
class InlineVideo:
    """A ComfyUI-style worker returned the file itself, base64-encoded; the caller decodes it
    (`decode_video`) and stores it at the video's key."""

    data: str


@dataclass(frozen=True)
class Failed:
    code: str
    message: str


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class TimedOut:
    reason: str
    code: str = ErrorCode.TIMED_OUT.value


Outcome = Waiting | Running | Uploaded | ResultUrl | InlineVideo | Failed | Cancelled | TimedOut


def is_final(outcome: Outcome) -> bool:
    """Whether the outcome ends the RunPod job (nothing more will come from it)."""
    return not isinstance(outcome, Waiting | Running)
