"""One step of the projections for one recorded event: the decision path, the projector, the
readers and the rebuild share these, which is why a rebuild gives exactly the live tables."""

from datetime import datetime

from openv_contracts.base import Message
from openv_jobs.domain import usage as usage_rules
from openv_jobs.domain.usage import Usage
from openv_jobs.domain.video import VideoState, evolve, start


def fold_video(state: VideoState | None, event: Message, user_id: str, at: datetime) -> VideoState:
    """The video after `event` (recorded at `at`); `user_id` counts for a stream's first event."""
    return start(event, user_id, at) if state is None else evolve(state, event, at)


def apply_event(
    state: VideoState | None, usage: Usage, event: Message, user_id: str, at: datetime
) -> tuple[VideoState, Usage]:
    """Both projections after one event; `at` is the event's recorded time."""
    return fold_video(state, event, user_id, at), usage_rules.apply(usage, state, event, at)
